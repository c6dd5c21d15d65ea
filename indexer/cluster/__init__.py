"""The build's heavy stages on a Ray cluster: parsing (parse.py) and embedding (embed.py), on
the workers connect.py offers. join.py joins a cluster (or starts a private one) with every
wait bounded; it imports nothing of the indexer, and the sharded server (search_api/cluster/)
joins through it too. Imported only by indexer/build.py, and only when a build is given a Ray
address: a local build never loads Ray. Needs the `cluster` extra.

May import: settings, manifest, store, load, chunk, embed, incremental, intake, workers
"""
