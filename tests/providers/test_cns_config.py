"""The ``cns`` settings: every mistake is reported at start, with its key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broker.app import create_app
from broker.errors import ConfigError
from tests.cns.pki_env import build_pki
from tests.harness import demo_settings


def _start(tmp_path: Path, **section: Any) -> None:
    create_app(demo_settings(tmp_path / "data", providers={"cns": section}),
               issuer="http://127.0.0.1:9")


@pytest.fixture
def good(tmp_path: Path) -> dict[str, Any]:
    env = build_pki(tmp_path / "pki", datetime.now(UTC))
    return {"tls_url": "https://127.0.0.1:8444/cns/tls", "trusted_proxies": ["127.0.0.1"],
            "ca_bundle": str(env.ca_bundle)}


def test_good_section_builds(tmp_path: Path, good: dict[str, Any]) -> None:
    _start(tmp_path, **good)


@pytest.mark.parametrize(("change", "key"), [
    ({"tls_url": "http://127.0.0.1:8444/cns/tls"}, "providers.cns.tls_url"),
    ({"trusted_proxies": []}, "providers.cns.trusted_proxies"),
    ({"trusted_proxies": ["nginx.local"]}, "providers.cns.trusted_proxies"),
    ({"revocation": "never"}, "providers.cns.revocation"),
    ({"ocsp_timout": 3}, "providers.cns.ocsp_timout"),
    ({"ca_bundle": "/nonexistent/ca.pem"}, "providers.cns.ca_bundle"),
])
def test_bad_sections_stop_the_start(tmp_path: Path, good: dict[str, Any],
                                     change: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        _start(tmp_path, **{**good, **change})
    assert key in str(info.value)


def test_missing_fields_are_all_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _start(tmp_path)
    text = str(info.value)
    for key in ("tls_url", "trusted_proxies", "ca_bundle"):
        assert f"providers.cns.{key}" in text
