"""Stage 2: one file to documents, skips and warnings.

    document.py  the values a loader returns (Document, Page, Skipped, LoadWarning)
    loader.py    dispatch by file type; anything a format raises becomes a skip with its reason
    isolate.py   parsing in a child process with a time limit, so a bad file cannot hang or
                 crash the build
    formats/     one module per format; e-mail attachments go back through the loader, which
                 hands itself in

May import: settings, store, progress
"""
