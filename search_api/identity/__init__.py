"""Who is asking: API keys (files or PostgreSQL), the SSO proxy's users, bearer parsing, and the
principal with its scopes that a request resolves to exactly once.

    principal.py  Principal, the scopes and the refusal of a missing one
    bearer.py     the key in an Authorization header
    keys.py       API keys, stored hashed beside the index (keys.sqlite)
    sso.py        users signed in by a trusted proxy, mapped to partners

May import: errors, settings
"""
