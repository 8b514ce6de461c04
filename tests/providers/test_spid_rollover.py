"""SAML SP certificate rollover: both certificates published, only the current one signs.

The operator generates the next pair, lists its certificate in ``rollover_cert_paths``
(IdPs refresh the metadata and learn it), then switches ``key_path``/``cert_path`` to
it and keeps the old certificate listed until every IdP has refreshed again.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from broker.errors import ConfigError
from providers.saml.certs import make_certificate, write_pair
from providers.saml.signing import SignatureError, verify_element, verify_query
from providers.saml.xmlutil import NS
from tests.providers.spid_env import SpidEnv, start_spid_env

pytestmark = pytest.mark.integration


def _pair(folder: Path, name: str, when: datetime | None = None) -> tuple[Path, Path]:
    key, cert = make_certificate(
        entity_id="http://127.0.0.1/spid/metadata", profile="public", org_id="PA:IT-inps",
        org_name="Istituto Nazionale della Previdenza Sociale", common_name="INPS",
        locality="Roma", now=when or datetime.now(UTC), key_size=2048)
    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.crt"
    write_pair(key, cert, key_path, cert_path)
    return key_path, cert_path


@pytest.fixture
def spid(broker_factory, tmp_path: Path) -> Iterator[SpidEnv]:
    current = _pair(tmp_path, "current")
    _, next_cert = _pair(tmp_path, "next")
    env = start_spid_env(broker_factory, tmp_path, key_path=str(current[0]),
                         cert_path=str(current[1]), rollover_cert_paths=[str(next_cert)])
    env.paths = {"current": current[1], "next": next_cert}  # type: ignore[attr-defined]
    yield env
    env.stop()


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_metadata_lists_both_certificates_and_is_signed_by_the_current_key(spid: SpidEnv):
    with spid.broker.client() as http:
        xml = http.get("/spid/metadata").content
    root = etree.fromstring(xml)
    published = [base64.b64decode(e.text) for e in root.iterfind(
        ".//md:SPSSODescriptor/md:KeyDescriptor[@use='signing']//ds:X509Certificate", NS)]
    current, upcoming = (_cert(spid.paths[k]) for k in ("current", "next"))
    der = [c.public_bytes(Encoding.DER) for c in (current, upcoming)]
    assert published == der, "current certificate first, then the next one"
    verify_element(root, [current])
    with pytest.raises(SignatureError):
        verify_element(root, [upcoming])


def test_authn_requests_are_signed_only_by_the_current_key(spid: SpidEnv):
    browser = spid.browser()
    _, r = browser.authorize()
    redirect = browser.follow(r, stop_at=spid.idp.base_url)
    location = redirect.headers["location"]
    query = urlsplit(location).query
    params = parse_qs(query)
    signed = query.split("&Signature=")[0]
    verify_query(signed, params["Signature"][0], params["SigAlg"][0],
                 [_cert(spid.paths["current"])])
    with pytest.raises(SignatureError):
        verify_query(signed, params["Signature"][0], params["SigAlg"][0],
                     [_cert(spid.paths["next"])])


def test_an_expired_rollover_certificate_stops_the_start(broker_factory, tmp_path: Path):
    _, old = _pair(tmp_path, "old", datetime(2020, 1, 1, tzinfo=UTC))
    with pytest.raises(ConfigError) as caught:
        start_spid_env(broker_factory, tmp_path, rollover_cert_paths=[str(old)])
    assert "expired" in str(caught.value)
