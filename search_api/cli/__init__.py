"""The command line's pieces (`python -m search_api`): settings from flags and the environment
(options.py), and the keys, audit and db subcommands (commands.py). `__main__.py` parses the
arguments and serves.

May import: errors, settings, identity, access, retrieval, audit, ops, state
"""
