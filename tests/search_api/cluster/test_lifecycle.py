"""What a server on Ray is told, and what it calls its applications (no cluster needed; the
cluster itself: tests/test_ray_foreign.py, tests/test_ray_shards.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from search_api.cluster.lifecycle import app_prefix
from search_api.settings import ApiSettings


def test_one_name_for_the_address_and_the_old_one_still_works_with_a_warning(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("PKS_RAY_ADDRESS", "10.0.0.5:6379")
    assert ApiSettings().ray_address == "10.0.0.5:6379"  # the build's name, the server's too
    assert "deprecated" not in caplog.text
    monkeypatch.delenv("PKS_RAY_ADDRESS")
    monkeypatch.setenv("PKS_RAY", "local")
    with caplog.at_level(logging.WARNING):
        assert ApiSettings().ray_address == "local"
    assert "PKS_RAY is deprecated: set PKS_RAY_ADDRESS" in caplog.text
    monkeypatch.setenv("PKS_RAY_ADDRESS", "10.0.0.5:6379")
    assert ApiSettings().ray_address == "10.0.0.5:6379"  # the new name wins
    for bad in ({"PKS_RAY_ADDRESS": "head-node"}, {"PKS_RAY": "head-node"},
                {"PKS_RAY_SERVE_HOST": "every-interface"}):
        with monkeypatch.context() as env:
            env.delenv("PKS_RAY", raising=False)
            for name, value in bad.items():
                env.setenv(name, value)
            with pytest.raises(ValidationError):
                ApiSettings()


def test_a_servers_applications_carry_its_index_and_a_token_of_its_own(tmp_path: Path) -> None:
    settings = ApiSettings(index=tmp_path / "Partner index (2026)")
    first, second = app_prefix(settings), app_prefix(settings)
    assert first.startswith("pks-Partner-index-2026-") and len(first) == len(second)
    assert first != second  # two servers of one index never share a name
