"""The surfaces: the FastAPI app, its routes, the request dependencies, error handling, the body
limit, the pages and the MCP tools (served at /mcp, and over stdio by `python -m search_api mcp`).

    app.py            the app, assembled from a Services
    deps.py           the request's principal (once) and its allowed set, as dependencies
    error_handlers.py every error as {"error": {"code", "message"}}; request_id.py the id every
                      answer names (a 5xx's details are in the server log under it)
    body_limit.py     413 before a body is read
    schemas.py        request and response models
    mcp_server.py     the MCP tools, over the same principal and allowed set
    routes/           one small router per surface; routes/__init__.py the scope table

Routes stay thin: they take the principal and the allowed set from deps.py and call the module
that owns the work.

May import: errors, settings, identity, access, retrieval, audit, ops, state
"""
