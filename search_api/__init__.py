"""Search API: request -> principal -> allowed set -> retrieve -> fuse -> passages.

Read it down the folders in that order (docs/ARCHITECTURE.md has the map):

    http/       the surfaces: the FastAPI app, its routes and dependencies, error handling, the
                body limit, the pages and the MCP tools
    identity/   who is asking: API keys, single sign-on, bearer parsing, principals and scopes
    access/     what it may see and how much it may ask: allowed sets and request budgets
    retrieval/  answering inside an allowed set: the served index, query batching, dense and
                lexical retrievers, fusion, passages, retrieve, original documents
    audit/      who received what: the audit trail and the owners' receipts
    ops/        operating it: metrics, readiness, builds and rollback
    state/      assembling it: the service built once, and the state replicas share (files
                beside the index, or PostgreSQL)
    cluster/    the Ray back-end of a sharded server (only with --ray)
    cli/        the command line's subcommands (keys, audit, db) and how it reads settings
    settings.py the one settings class; errors.py the domain errors every layer raises

Each sub-package's docstring ends with the line "May import:", which tests/test_layering.py
holds: a package imports only what sits below it, so there is no import circle.
"""
