"""The build's heavy stages on a Ray cluster: parsing (parse.py) and embedding (embed.py),
joined or started by connect.py. Imported only by indexer/build.py, and only when a build is
given a Ray address: a local build never loads Ray. Needs the `cluster` extra.

May import: settings, manifest, store, load, chunk, embed, incremental, intake, workers
"""
