"""Serving a sharded generation on a Ray cluster (`python -m search_api serve --ray ADDRESS`).

    shard.py    the Ray Serve deployment of one shard: it opens the shard's store (rows,
                lexical index, vectors) through `indexer.store` and answers "top k of this
                query within this allowed set", exactly as a local store does
    ingress.py  the API server's side: connects to the cluster, deploys one application per
                shard (replicas from Ray Serve), fans each question out and retries, bounded

Imported only with `--ray`: a server without it never loads Ray (`make serve` does not need the
`cluster` extra). The API still resolves the principal and its allowed set once, in the server;
the shards only ever see the allowed set.

May import: errors, settings, identity, access, retrieval
"""
