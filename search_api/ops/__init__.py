"""Operating the service: metrics (/metrics), readiness (/readyz), builds and rollback.

    metrics.py    Prometheus metrics of requests, the index and the audit
    readiness.py  a real query through the index, at most every PKS_READY_CHECK_SECONDS
    builds.py     the build runs of the index, and a rollback to a kept generation

May import: errors, settings, identity, access, retrieval, audit
"""
