"""Serving a sharded generation on a Ray cluster (`python -m search_api serve --ray ADDRESS`).

    shard.py     the Ray Serve deployment of one shard: it opens the shard's store (rows,
                 lexical index, vectors) through `indexer.store` and answers "top k of this
                 query within this allowed set", exactly as a local store does
    listen.py    where a replica's Serve port listens: its node's Ray address, never every
                 interface
    ingress.py   the API server's side of a request: fans each question out to the shards'
                 applications and retries, bounded
    lifecycle.py the API server's place on the cluster: joins it (or starts a private one,
                 indexer/cluster/join.py), names, places and deploys one application per shard
                 (replicas from Ray Serve), each wait with a deadline, and deletes only what
                 it deployed
    stopping.py  SIGTERM and SIGINT while a server on Ray starts: it stops within a bound and
                 removes what it had deployed

Imported only with `--ray`: a server without it never loads Ray (`make serve` does not need the
`cluster` extra). The API still resolves the principal and its allowed set once, in the server;
the shards only ever see the allowed set.

Besides the store, it imports one module of the indexer, indexer/cluster/join.py: joining a
cluster with every wait bounded is one piece of code for the build and for the server.

May import: errors, settings, identity, access, retrieval
"""
