"""Readers for the data sets the examples use (each raises a clear error saying where to get the
files when they are absent), small built-in stand-ins so that every example runs without them
(``builtin``: Python's help text; ``sst2.toy_sentiment``; ``wnut17.toy_ner``), ``files``: reading a
user's ``--data`` path with errors that name the flag, and data transforms such as dynamic MLM
masking."""
