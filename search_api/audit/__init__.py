"""Who received what: the audit trail (one append-only record per access) and the owners'
receipts built from it.

    trail.py  what every audit shares: the record, the protocol, the query
    files.py  the audit in files beside the index, its reader, receipts and retention
    owned.py  what each owner's documents were shown to, and when, from tallies
    tally.py  what one record adds to the receipts; receipts.py the file audit's tallies
    retention.py  records older than the retention: exported, then removed

The PostgreSQL audit (search_api/state/postgres/audit.py) keeps the same contract.

May import: errors, settings, identity, access
"""
