"""The registry's rate-limited rescan: new files at once, in-place edits within the interval."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from broker.clock import FixedClock
from providers.saml.idp_registry import IdpRegistry
from providers.saml.testidp.idp import TestIdp


def _metadata(d: Path, entity_id: str) -> str:
    return TestIdp(entity_id=entity_id, base_url=entity_id, key_dir=d,
                   sp_metadata=lambda: "").metadata_xml()


def test_added_and_removed_files_are_seen_at_once_despite_the_interval(tmp_path: Path):
    idps = tmp_path / "idps"
    idps.mkdir()
    reg = IdpRegistry(idps, FixedClock(datetime.now(UTC)).now, min_interval=3600)
    assert reg.all() == []
    (idps / "a.xml").write_text(_metadata(tmp_path / "a", "https://a.example"))
    assert reg.has("https://a.example")  # the folder's mtime changed: rescanned
    (idps / "a.xml").unlink()
    assert not reg.has("https://a.example")


def test_in_place_edit_waits_for_the_interval_unless_forced(tmp_path: Path):
    idps = tmp_path / "idps"
    idps.mkdir()
    target = idps / "a.xml"
    target.write_text(_metadata(tmp_path / "a", "https://a.example"))
    reg = IdpRegistry(idps, FixedClock(datetime.now(UTC)).now, min_interval=3600)
    assert reg.has("https://a.example")
    folder_mtime = idps.stat().st_mtime_ns
    target.write_text(_metadata(tmp_path / "b", "https://b.example"))  # same file rewritten
    os.utime(idps, ns=(folder_mtime, folder_mtime))
    assert reg.has("https://a.example")  # within the interval: files not stat'ed again
    assert reg.refresh(force=True)
    assert not reg.has("https://a.example") and reg.has("https://b.example")
