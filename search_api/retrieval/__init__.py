"""Retrieval: retrievers that search only inside an allowed set, and the fusion of their lists.

Every retriever answers `(query, allowed, k) -> [(chunk_id, score), ...]`, best first, with the
allowed set as a required argument; fusion is a pure function of ranked lists.
"""
