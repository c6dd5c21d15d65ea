"""Domain errors: raised where a request is refused, translated in one place
(search_api/http/error_handlers.py) into one JSON shape: {"error": {"code", "message"}}."""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class Unauthorized(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(403, "forbidden", message)


class Unavailable(ApiError):
    """The key store (PostgreSQL) cannot be read: the request fails closed, never as a 401."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "keys_unavailable", message, {"Retry-After": "5"})
