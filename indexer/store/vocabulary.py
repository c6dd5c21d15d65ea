"""A generation's vocabulary, looked up at a cost that does not depend on whether a term is in it.

The postings (bm25.py) name terms by number. A query's tokens are found by their 64-bit hash
(BLAKE2b, salted so that the generation's hashes are distinct) in one sorted array: one
`searchsorted` for all of a query's tokens, then every candidate's bytes compared with its token.
A token that is in the vocabulary and one that is not take exactly the same steps (the hash, the
binary search, one comparison); only the outcome differs. The binary search of a Python sequence
it replaces stopped a step earlier or later depending on the words around it, and was cached per
term across callers, so a term's first use told that someone had used it before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from indexer.store.work import tally

MAX_SALT = 1024  # salts tried for a vocabulary without two terms of one hash (the first does)


def hashes_of(terms: Sequence[bytes], salt: int) -> np.ndarray:
    """The 64-bit hash of each term (uint64)."""
    key = salt.to_bytes(8, "little")
    return np.fromiter((int.from_bytes(hashlib.blake2b(t, digest_size=8, salt=key).digest(),
                                       "little") for t in terms), dtype=np.uint64,
                       count=len(terms))


class Vocabulary:
    """Terms, sorted, as one UTF-8 blob and offsets (term i is blob[offsets[i]:offsets[i+1]]),
    and their hashes, sorted, with the term number of each."""

    ARRAYS = ("terms", "term_offsets", "term_hashes", "hash_terms", "hash_salt")

    def __init__(self, terms: np.ndarray, term_offsets: np.ndarray, term_hashes: np.ndarray,
                 hash_terms: np.ndarray, hash_salt: np.ndarray) -> None:
        self.blob, self.offsets = terms, term_offsets
        self.hashes, self.order = term_hashes, hash_terms
        self.salt = int(hash_salt[0])

    @classmethod
    def build(cls, blob: np.ndarray, offsets: np.ndarray) -> Vocabulary:
        """Hash every term with the first salt under which no two terms share a hash."""
        terms = [blob[offsets[i]:offsets[i + 1]].tobytes() for i in range(offsets.size - 1)]
        for salt in range(MAX_SALT):
            hashes = hashes_of(terms, salt)
            order = np.argsort(hashes, kind="stable")
            if hashes.size < 2 or bool(np.all(np.diff(hashes[order]) > 0)):
                return cls(blob, offsets, hashes[order], order.astype(np.int64),
                           np.array([salt], dtype=np.int64))
        raise ValueError(f"no salt of {MAX_SALT} hashes {len(terms)} terms apart")

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(zip(self.ARRAYS, (self.blob, self.offsets, self.hashes, self.order,
                                      np.array([self.salt], dtype=np.int64)), strict=True))

    def __len__(self) -> int:
        return int(self.offsets.size) - 1

    def term(self, number: int) -> bytes:
        return self.blob[self.offsets[number]:self.offsets[number + 1]].tobytes()

    def lookup(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(candidate, known) per token: `candidate` is the token's term number where `known`,
        and some other term's number where not; the same steps either way."""
        keys = [t.encode("utf-8") for t in tokens]
        tally(terms=len(keys))
        if len(self) == 0:
            return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
        wanted = hashes_of(keys, self.salt)
        at = np.minimum(np.searchsorted(self.hashes, wanted), len(self) - 1)
        candidates = self.order[at]
        same = np.fromiter((self.term(int(c)) == key for c, key in zip(candidates, keys,
                                                                       strict=True)),
                           dtype=bool, count=len(keys))
        return candidates, same & (self.hashes[at] == wanted)
