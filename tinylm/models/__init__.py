"""Models: compositions of tinylm.nn modules, each with an explicit whole-model backward.

Import from the submodules (``from tinylm.models.gpt import GPT``); nothing is imported here so
that loading one model never pulls in the others (or their optional dependencies).
"""
