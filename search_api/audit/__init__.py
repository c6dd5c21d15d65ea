"""Who received what: the audit trail (one append-only record per access) and the owners'
receipts built from it.

    trail.py  the audit in files beside the index, its reader and its query
    owned.py  what each owner's documents were shown to, and when

The PostgreSQL audit (search_api/state/postgres/audit.py) keeps the same contract.

May import: errors, settings, identity, access
"""
