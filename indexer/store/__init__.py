"""The index format: one package that writes, reads and keeps generations of an index.

    layout.py       the directory, CURRENT, the atomic switch of the live generation, shards
    records.py      the rows a generation stores (chunks, documents, grants, files)
    names.py        partner ids and path globs, as every reader and writer checks them
    writer.py       writes a new generation beside the live one, then publishes it
    reader.py       `Generation`: a published generation opened read-only
    generations.py  list, clean up and roll back the kept generations
    lock.py         one build or rollback at a time
    runs.py         every build run's outcome (exit code, when, how long), published or not
    vectors.py      the vectors, planner.py how a search reads an allowed set (exactly, or
                    through ann.py's IVF index for broad sets), plan_cache.py the plans of
                    recent allowed sets, vector_file.py writing vectors without a second copy
                    (vectors, ann and vector_file: the only code that touches FAISS)
    lexical.py      the FTS5 index of the chunks, folding.py what it folds (accents, ß,
                    ligatures), for the chunks and the queries alike
    bm25.py         BM25 over the postings, partitioned by access group; vocabulary.py a
                    term's number at a cost that does not tell whether it exists; npz_map.py
                    the postings memory-mapped
    work.py         what a request did, counted (the tests of work bounded by what it may see)

It imports nothing from the build pipeline or the search API: the pipeline writes through it,
the API reads through it (tests/test_layering.py holds that rule). Modules are imported by name;
this file imports nothing, so `python -m indexer generations` does not load FAISS.

May import: nothing else of indexer
"""
