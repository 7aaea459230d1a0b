"""Readers for the data sets the examples use (each raises a clear error saying where to get the
files when they are absent) and data transforms such as dynamic MLM masking."""
