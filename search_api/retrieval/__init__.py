"""Answering inside an allowed set: retrievers that search only its chunks, and what is built
from their ranked lists.

    live.py       the served index: one immutable snapshot, swapped atomically on reload
    batching.py   concurrent requests' queries embedded in one forward pass
    search.py     one query: dense and lexical retrieval, fused (hybrid) or alone
    dense.py, lexical.py, shards.py, merge.py   the retrievers, over the shards of a generation
    fusion.py     a pure function of ranked lists
    citing.py     which page each passage cites for the query (the page of its best match)
    documents.py  chunk -> document, in memory, for fusion
    stitching.py  passages widened with their neighbours, document text rebuilt
    retrieve.py   passages for chat bots (POST /v1/retrieve, MCP)
    originals.py  the original file of a document (GET /v1/documents)

Every retriever answers `(query, allowed, k) -> [(chunk_id, score), ...]`, best first, with the
allowed set as a required argument; fusion is a pure function of ranked lists.

May import: errors, settings, identity, access
"""
