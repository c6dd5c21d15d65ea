"""One module per file format; each turns one file into documents, skips or warnings.

`indexer.load` dispatches to them by file type and turns anything they raise into a skip.
"""
