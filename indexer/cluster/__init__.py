"""The build's heavy stages on a Ray cluster: parsing (parse.py) and embedding (embed.py),
joined or started by connect.py. Imported only when a build is given a Ray address
(indexer/workers.py): a local build never loads Ray. Needs the `cluster` extra."""
