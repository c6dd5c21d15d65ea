"""One module per file format; each turns one file into documents, skips or warnings.

`indexer.load.loader` dispatches to them by file type and turns anything they raise into a skip.
A format that needs to load other files (e-mail attachments) is handed the loader.

May import: store, load.document
"""
