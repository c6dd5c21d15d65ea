"""The MCP server: retrieval and documents as tools for chat assistants (official `mcp` SDK).

One server definition serves both transports: stdio (`python -m search_api mcp`, the key from
PKS_API_KEY) and streamable HTTP mounted at /mcp (the key as `Authorization: Bearer`, on every
request). Each tool call resolves its caller exactly as an HTTP route does: key ->
deps.principal_for -> Principal -> the scope the tool needs -> access.py's allowed set -> the
one search path. There is no second check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import Field, ValidationError

from search_api.access.allowed import AllowedSet
from search_api.audit.trail import AuditUnavailable
from search_api.errors import ApiError
from search_api.http.deps import principal_for
from search_api.http.routes.retrieve import model_name, to_response
from search_api.http.schemas import RetrieveRequest, require_text
from search_api.identity.principal import DOCUMENTS, RETRIEVE, AccessDenied, Principal
from search_api.retrieval.live import LoadedIndex
from search_api.retrieval.retrieve import retrieve
from search_api.retrieval.stitching import document_text
from search_api.state.services import Services

NAME = "partner-knowledge-search"
INSTRUCTIONS = """Search the partner documents this key may see. Call search_partner_knowledge
with the user's question to get numbered passages with citations ([1] title, p. 4) and cite them
in the answer; call fetch_document with a passage's doc_id to read the whole document."""

# How a tool call finds the key it runs with: from the environment (stdio) or the request.
TokenOf = Callable[[Context], str | None]


def _caller(services: Services, token: str | None,
            scope: str) -> tuple[Principal, LoadedIndex, AllowedSet]:
    """The same path as an HTTP request; a refusal becomes a tool error the model can read."""
    try:
        principal = principal_for(services.keys, token)
        principal.require(scope)
    except ApiError as exc:
        raise ToolError(exc.message) from None
    except AccessDenied as exc:
        raise ToolError(str(exc)) from None
    index = services.holder.get()
    return principal, index, index.access.allowed_for(principal, services.today())


def _audited(services: Services, principal: Principal, surface: str, *, index: LoadedIndex,
             query: str, doc_ids: list[str], status: int = 200,
             approximate: bool | None = None, pages: list[int | None] | None = None) -> None:
    """The audit record comes before the answer; without it there is no answer (as HTTP 503)."""
    try:
        services.audit.record(principal, surface, generation=index.generation, query=query,
                              doc_ids=doc_ids, status=status, approximate=approximate,
                              pages=pages)
    except AuditUnavailable as exc:
        raise ToolError(str(exc)) from None


def build_server(services: Callable[[], Services], token_of: TokenOf) -> MCPServer:
    """`services` is read per call (the HTTP app's, or the stdio process's own)."""
    server: MCPServer = MCPServer(NAME, instructions=INSTRUCTIONS)

    @server.tool(name="search_partner_knowledge")
    def search_partner_knowledge(
        query: Annotated[str, Field(description="The question, in natural language.")],
        ctx: Context,
        max_tokens: Annotated[int, Field(ge=50, le=8000, description=(
            "Budget of the returned context, in the embedding model's tokens."))] = 1500,
        top_k: Annotated[int, Field(ge=1, le=100, description=(
            "How many best chunks to consider before merging neighbours."))] = 20,
    ) -> CallToolResult:
        """Passages from the partner documents this key may see, best first, neighbouring
        chunks merged, each numbered with a citation ([1] title, p. 4), packed into max_tokens.
        The text is ready to quote; structured content has doc_ids for fetch_document."""
        try:
            body = RetrieveRequest(query=query, max_tokens=max_tokens, top_k=top_k,
                                   on_behalf_of=None)
        except ValidationError as exc:
            raise ToolError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                      for e in exc.errors())) from None
        principal, index, allowed = _caller(services(), token_of(ctx), RETRIEVE)
        result = retrieve(index, body.query, allowed, body.max_tokens, body.top_k)
        _audited(services(), principal, "mcp", index=index, query=body.query,
                 doc_ids=[p.first.doc_id for p in result.passages],
                 approximate=result.approximate, pages=[p.pages.cited for p in result.passages])
        response = to_response(result, model_name(index.embedder.model))
        text = response.context or "No passage this key may see matches the question."
        return CallToolResult(content=[TextContent(type="text", text=text)],
                              structured_content=response.model_dump(mode="json"))

    @server.tool(name="fetch_document")
    def fetch_document(
        doc_id: Annotated[str, Field(min_length=1, max_length=1000, description=(
            "A doc_id from search_partner_knowledge."))],
        ctx: Context,
        max_chars: Annotated[int, Field(ge=100, le=1_000_000, description=(
            "Return at most this many characters of text."))] = 100_000,
    ) -> CallToolResult:
        """The text of one document this key may see, page by page (rebuilt from the index)."""
        principal, index, allowed = _caller(services(), token_of(ctx), DOCUMENTS)
        try:
            require_text(doc_id)
        except ValueError as exc:
            raise ToolError(f"doc_id: {exc}") from None
        document = document_text(index, doc_id, allowed)
        _audited(services(), principal, "mcp-document", index=index, query=doc_id,
                 doc_ids=[doc_id] if document else [], status=200 if document else 404)
        if document is None:  # the same answer as for a document that does not exist
            raise ToolError(f"no document with doc_id '{doc_id}'")
        pages, room = [], max_chars
        for page in document.pages:
            if room <= 0:
                break
            pages.append({"page": page.page, "section": page.section, "text": page.text[:room]})
            room -= len(page.text)
        text = "\n\n".join(f"[p. {p['page']}]\n{p['text']}" if p["page"] is not None
                            else str(p["text"]) for p in pages)
        structured = {"doc_id": document.doc_id, "title": document.title, "path": document.path,
                      "truncated": sum(len(p.text) for p in document.pages) > max_chars,
                      "pages": pages}
        heading = f"{document.title} ({document.path})"
        return CallToolResult(content=[TextContent(type="text", text=f"{heading}\n\n{text}")],
                              structured_content=structured)

    return server
