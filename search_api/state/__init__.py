"""Assembling the service: every component built once from the settings (services.py), and the
state replicas share, keys and audit (shared.py: files beside the index, or PostgreSQL in
postgres/).

May import: errors, settings, identity, access, retrieval, audit, ops, cluster
"""
