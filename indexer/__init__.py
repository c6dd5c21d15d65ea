"""Indexer: load -> chunk -> embed -> store, publishing one index generation per build."""
