"""An uncompressed .npz (what `np.savez` writes) memory-mapped, member by member.

Why: the BM25 postings (lexical.npz, about 250 MB at a million chunks) were read into each
server process's heap, so every extra worker on a host paid for its own copy
(docs/REPLICAS.md). Mapped, the workers share one copy in the page cache, as they share
vectors.npy. NumPy maps a .npy but not the members of an .npz; `np.savez` stores them
uncompressed, so each member's array data is a plain byte range of the file: found from its
zip local header and its .npy header, it is mapped like a .npy. Generations written before
this change are mapped too (the file format did not change).
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

# A zip member's local file header: 30 bytes, the name's and the extra field's lengths last.
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")


def map_npz(path: Path) -> dict[str, np.ndarray] | None:
    """Every array of the .npz at `path`, read-only and memory-mapped; None when a member is
    compressed (`np.savez_compressed`) or holds Python objects (the caller then reads it)."""
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                return None
            handle.seek(info.header_offset)
            *_, name_length, extra_length = _LOCAL_HEADER.unpack(
                handle.read(_LOCAL_HEADER.size))
            handle.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(handle)
            if dtype.hasobject:
                return None
            name = info.filename.removesuffix(".npy")
            if int(np.prod(shape)) == 0:  # nothing to map (mmap refuses an empty range)
                arrays[name] = np.zeros(shape, dtype=dtype)
                continue
            mapped = np.memmap(path, dtype=dtype, mode="r", offset=handle.tell(), shape=shape,
                               order="F" if fortran else "C")
            arrays[name] = np.asarray(mapped)  # a plain read-only array over the mapping
    return arrays
