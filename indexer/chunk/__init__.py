"""Stage 3: documents to chunks, at content-defined boundaries (docs/CHUNKING.md).

    units.py       natural units: paragraphs, then lines, sentences, words
    boundaries.py  which units end a chunk, chosen by the text around them
    chunker.py     pages to chunks with their ids, sections and offsets

May import: load, store
"""
