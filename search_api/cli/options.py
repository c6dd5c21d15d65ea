"""What every command of the search API's CLI shares: its exit codes and how it builds the
settings (one ApiSettings from the environment and the command's options, or a message)."""

from __future__ import annotations

import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def settings_from(overrides: dict[str, Any]):  # -> ApiSettings | None (imported late: fast --help)
    from pydantic import ValidationError

    from search_api.settings import ApiSettings

    try:
        return ApiSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return None
