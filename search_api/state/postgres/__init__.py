"""Keys and audit in one PostgreSQL database shared by every replica (PKS_DATABASE_URL).

The same two things the files beside an index hold (search_api/identity/keys.py,
search_api/audit/trail.py), with the same contracts: a key revoked through any replica or CLI is
refused by every replica from its next request (no cache), and the audit holds the accesses of
all replicas. Imported only when PKS_DATABASE_URL is set (search_api/state/shared.py), so a
single server never needs psycopg or a database.

May import: errors, settings, identity, access, audit
"""
