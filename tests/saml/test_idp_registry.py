"""The IdP registry trusts only IdPs with current metadata and a valid signing certificate."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.clock import FixedClock
from providers.saml.idp_registry import IdpRegistry
from providers.saml.testidp.idp import TestIdp, make_keys


def _idp(d: Path, entity_id: str, *, cert_from: datetime | None = None,
         days: int = 365) -> TestIdp:
    if cert_from is not None:
        make_keys(d, entity_id, now=cert_from, days=days)
    return TestIdp(entity_id=entity_id, base_url=entity_id, key_dir=d, sp_metadata=lambda: "")


def test_current_idp_is_trusted_and_listed(tmp_path: Path) -> None:
    idps = tmp_path / "idps"
    idps.mkdir()
    (idps / "a.xml").write_text(_idp(tmp_path / "a", "https://a.example").metadata_xml())
    reg = IdpRegistry(idps, FixedClock(datetime.now(UTC)).now)
    assert [i.entity_id for i in reg.all()] == ["https://a.example"]
    info = reg.get("https://a.example")
    assert info is not None and info.sso


def test_expired_signing_certificate_is_refused(tmp_path: Path) -> None:
    idps = tmp_path / "idps"
    idps.mkdir()
    old = datetime.now(UTC) - timedelta(days=30)
    idp = _idp(tmp_path / "old", "https://old.example", cert_from=old, days=2)
    (idps / "old.xml").write_text(idp.metadata_xml())
    reg = IdpRegistry(idps, FixedClock(datetime.now(UTC)).now)
    assert reg.get("https://old.example") is None
    assert "expired" in reg.rejected[0].reason


def test_certificate_expiring_while_running_stops_trust(tmp_path: Path) -> None:
    idps = tmp_path / "idps"
    idps.mkdir()
    now = datetime.now(UTC)
    idp = _idp(tmp_path / "soon", "https://soon.example", cert_from=now, days=2)
    (idps / "soon.xml").write_text(idp.metadata_xml())
    clock = FixedClock(now)
    reg = IdpRegistry(idps, clock.now)
    assert reg.get("https://soon.example") is not None
    clock.advance(days=3)
    assert reg.get("https://soon.example") is None
    assert reg.all() == []


def test_metadata_past_valid_until_is_refused(tmp_path: Path) -> None:
    idps = tmp_path / "idps"
    idps.mkdir()
    xml = _idp(tmp_path / "v", "https://v.example").metadata_xml()
    tag = "<ns0:EntityDescriptor "
    xml = xml.replace(tag, tag + 'validUntil="2020-01-01T00:00:00Z" ', 1)
    assert "validUntil" in xml
    (idps / "v.xml").write_text(xml)
    reg = IdpRegistry(idps, FixedClock(datetime.now(UTC)).now)
    assert reg.get("https://v.example") is None
    assert "validUntil" in reg.rejected[0].reason


def test_entities_descriptor_and_refresh_without_restart(tmp_path: Path) -> None:
    idps = tmp_path / "idps"
    idps.mkdir()
    a = _idp(tmp_path / "a", "https://a.example").metadata_xml()
    b = _idp(tmp_path / "b", "https://b.example").metadata_xml()

    def strip(xml: str) -> str:
        return xml.split("?>", 1)[-1]

    (idps / "registry.xml").write_text(
        '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
        f"{strip(a)}</md:EntitiesDescriptor>")
    reg = IdpRegistry(idps, FixedClock(datetime.now(UTC)).now)
    assert [i.entity_id for i in reg.all()] == ["https://a.example"]
    (idps / "b.xml").write_text(b)
    assert {i.entity_id for i in reg.all()} == {"https://a.example", "https://b.example"}
    (idps / "registry.xml").unlink()
    os.utime(idps / "b.xml")
    assert [i.entity_id for i in reg.all()] == ["https://b.example"]


def test_a_feed_with_a_malformed_valid_until_is_refused_alone(tmp_path: Path) -> None:
    """One broken federation file must not take the other IdPs (or the start) down: its
    unreadable outer validUntil used to raise out of every registry lookup."""
    idps = tmp_path / "idps"
    idps.mkdir()
    a = _idp(tmp_path / "a", "https://a.example").metadata_xml()
    b = _idp(tmp_path / "b", "https://b.example").metadata_xml()
    (idps / "a.xml").write_text(a)
    (idps / "feed.xml").write_text(
        '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        'validUntil="2030-13-45T00:00:00Z">'
        f'{b.split("?>", 1)[-1]}</md:EntitiesDescriptor>')
    reg = IdpRegistry(idps, FixedClock(datetime.now(UTC)).now)
    assert reg.get("https://a.example") is not None
    assert reg.get("https://b.example") is None
    assert [(r.source, r.reason) for r in reg.rejected] == [
        ("feed.xml", "validUntil: impossible time")]
