"""Indexer: discover -> load -> chunk -> embed -> store, publishing one index generation per build.

Read it in the order of the pipeline (docs/ARCHITECTURE.md has the map):

    __main__.py     the command line: build, generations, rollback, ship
    build.py        the pipeline, top to bottom; chooses who does the heavy work (this machine
                    or a Ray cluster)
    settings.py     the one settings class;  manifest.py  access.yaml, its rules and grants
    discover.py     1. which files a corpus holds
    intake.py       2. which of them changed; the unchanged reused, the rest parsed
    load/           2. parsing one file: the loader, one module per format, the isolated parser
    chunk/          3. units, content-defined boundaries, chunks
    embed/          4. the embedding model (OpenVINO or torch)
    store/          5. the index format: writes, reads and keeps generations
    incremental.py  what the live generation offers the next build (vectors, parsed files)
    workers.py      the local workers, and what a back-end offers the build
    report.py, progress.py  what a build tells its user
    cluster/        the Ray back-end (only with --ray)
"""
