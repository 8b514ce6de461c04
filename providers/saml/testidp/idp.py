"""A SAML IdP for development and tests, built on pysaml2 (not on the SP's python3-saml).

It answers SPID-shaped responses: Issuer with Format entity on Response and
Assertion, transient NameID with NameQualifier, bearer SubjectConfirmation,
Conditions with NotBefore/NotOnOrAfter and the SP's Audience, the level in
AuthnContextClassRef, the SPID attributes the SP's metadata requests, both Response
and Assertion signed (RSA-SHA256). Tests use ``response_xml(..., mutate=...)`` to
produce responses that are *validly signed* by the IdP yet wrong in one field.

pysaml2 builds the messages and the signature templates; the signatures themselves are
made in-process by libxmlsec1 through python-xmlsec. pysaml2's own backend runs the
``xmlsec1`` command twice per signature (``--version``, then ``--sign``): about 50 ms of
CPU per login in four short-lived processes, which saturated the bench machine and
inflated the broker's own measured CPU (bench/README.md, seventh round). The command
wraps the same libxmlsec1, so the result is the same signature.

With ``profile="cie"`` the same IdP plays CIE ID: its users carry the four CIE
attributes and every Issuer comes without ``Format``, as CIE ID sends it.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_TRANSIENT, NameID
from saml2.server import Server
from saml2.sigver import pre_signature_part
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from providers.saml.testidp.users import CIE_USERS, DEFAULT_USERS, EIDAS_USERS, LEVEL, TestUser

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
AUTHN_FAILED = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
Mutator = Callable[[etree._Element], None]


@dataclass(frozen=True)
class IdpRequest:
    """An AuthnRequest the IdP accepted (its signature verified by pysaml2)."""

    id: str
    sp_entity_id: str
    acs_url: str
    acr: str
    comparison: str
    relay_state: str | None
    binding: str
    attr_index: str | None = None  # AttributeConsumingServiceIndex (FICEP: 99 or 100)
    purpose: str | None = None  # SPID's spid:Purpose extension: the kind of identity asked


def make_keys(key_dir: Path, common_name: str, *, days: int = 365,
              now: datetime | None = None) -> tuple[Path, Path]:
    """A self-signed RSA-2048/SHA-256 pair for the IdP, created once in ``key_dir``."""
    key_path, cert_path = key_dir / "idp.key", key_dir / "idp.crt"
    if key_path.exists() and cert_path.exists():
        return key_path, cert_path
    key_dir.mkdir(parents=True, exist_ok=True)
    now = now or datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.COUNTRY_NAME, "IT")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
            .sign(key, hashes.SHA256()))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class TestIdp:
    """The IdP: pysaml2 ``Server`` plus SPID shaping and the user table."""

    __test__ = False  # not a pytest class

    def __init__(self, *, entity_id: str, base_url: str, key_dir: Path,
                 sp_metadata: Callable[[], bytes | str],
                 users: tuple[TestUser, ...] | None = None,
                 name: str | None = None, sign_keys: tuple[Path, Path] | None = None,
                 profile: str = "spid"):
        if profile not in _SHAPES:
            raise ValueError(f"profile must be one of {sorted(_SHAPES)}")
        self.profile = profile
        self._shape = _SHAPES[profile]
        self.entity_id = entity_id
        self.base_url = base_url.rstrip("/")
        self.name = name or _NAMES[profile]
        if users is None:
            users = {"cie": CIE_USERS, "eidas": EIDAS_USERS}.get(profile, DEFAULT_USERS)
        self.users = {u.username: u for u in users}
        self.key_file, self.cert_file = make_keys(Path(key_dir), self.name)
        # Tests may sign with keys that are not the ones in the metadata.
        self.sign_key_file, self.sign_cert_file = sign_keys or (self.key_file, self.cert_file)
        self._sp_metadata = sp_metadata
        self._server: Server | None = None
        self._lock = threading.Lock()
        # What the SLO routes saw, for tests: NameIDs logged out, statuses received.
        self.logout_requests: list[str] = []
        self.logout_results: list[str] = []

    # --- configuration ----------------------------------------------------------------
    def _config(self, sp_metadata: str | None) -> IdPConfig:
        sso, slo = f"{self.base_url}/sso", f"{self.base_url}/slo"
        conf = {
            "entityid": self.entity_id,
            "name": self.name,
            "service": {"idp": {
                "name": self.name,
                "endpoints": {
                    "single_sign_on_service": [(sso, BINDING_HTTP_REDIRECT),
                                               (sso, BINDING_HTTP_POST)],
                    "single_logout_service": [(slo, BINDING_HTTP_REDIRECT),
                                              (slo, BINDING_HTTP_POST)],
                },
                "name_id_format": [NAMEID_FORMAT_TRANSIENT],
                "want_authn_requests_signed": True,
                "sign_response": True,
                "sign_assertion": True,
                "policy": {"default": {"lifetime": {"minutes": 5},
                                       "attribute_restrictions": None,
                                       "name_form": BASIC}},
            }},
            "key_file": str(self.key_file),
            "cert_file": str(self.cert_file),
            "xmlsec_binary": shutil.which("xmlsec1") or "/usr/bin/xmlsec1",
            "metadata": {"inline": [sp_metadata]} if sp_metadata else {},
            "accepted_time_diff": 60,
            "organization": {"name": [(self.name, "it")], "display_name": [(self.name, "it")],
                             "url": [(self.base_url, "it")]},
        }
        cfg = IdPConfig()
        cfg.load(conf)
        return cfg

    def server(self, reload: bool = False) -> Server:
        with self._lock:
            if self._server is None or reload:
                raw = self._sp_metadata()
                text = raw.decode() if isinstance(raw, bytes) else raw
                self._server = Server(config=self._config(text))
            return self._server

    def metadata_xml(self) -> str:
        """The IdP metadata (unsigned; the SP trusts the file it is given)."""
        ed = entity_descriptor(self._config(None))
        return str(ed)

    def user(self, username: str, password: str) -> TestUser | None:
        u = self.users.get(username)
        if u is None or not secrets.compare_digest(u.password.encode(), password.encode()):
            return None
        return u

    # --- requests ---------------------------------------------------------------------
    def parse_request(self, binding: str, saml_request: str, relay_state: str | None = None,
                      sig_alg: str | None = None, signature: str | None = None) -> IdpRequest:
        """Verify and read an AuthnRequest; unknown SPs cause one metadata reload."""
        for attempt in range(2):
            server = self.server(reload=attempt > 0)
            try:
                parsed = server.parse_authn_request(saml_request, binding, relay_state=relay_state,
                                                    sigalg=sig_alg, signature=signature)
                break
            except Exception:
                if attempt:
                    raise
        req = parsed.message
        sp = req.issuer.text.strip()
        acs = req.assertion_consumer_service_url
        if not acs:
            idx = req.assertion_consumer_service_index or "0"
            for s in server.metadata.assertion_consumer_service(sp, BINDING_HTTP_POST):
                if str(s.get("index", "0")) == str(idx):
                    acs = s["location"]
        rac = req.requested_authn_context
        acr = rac.authn_context_class_ref[0].text.strip() if rac else ""
        comparison = (rac.comparison if rac else None) or "exact"
        index = req.attribute_consuming_service_index
        purpose = next((el.text for el in (req.extensions.extension_elements
                                           if req.extensions else [])
                        if el.tag == "Purpose"), None)
        return IdpRequest(id=req.id, sp_entity_id=sp, acs_url=acs, acr=acr,
                          comparison=comparison, relay_state=relay_state, binding=binding,
                          attr_index=str(index) if index is not None else None,
                          purpose=purpose)

    # --- responses --------------------------------------------------------------------
    def answer_level(self, req: IdpRequest, user: TestUser) -> str | None:
        """The level the IdP asserts for this user, or None if it cannot satisfy the SP."""
        wanted = LEVEL.get(req.acr, 2)
        if user.max_level < wanted:
            return None
        return {1: "https://www.spid.gov.it/SpidL1", 2: "https://www.spid.gov.it/SpidL2",
                3: "https://www.spid.gov.it/SpidL3"}[wanted]

    def response_xml(self, req: IdpRequest, user: TestUser, *, acr: str | None = None,
                     attributes: dict[str, str] | None = None, mutate: Mutator | None = None,
                     sign_assertion: bool = True, sign_response: bool = True,
                     in_response_to: str | None = None, audience: str | None = None,
                     destination: str | None = None) -> bytes:
        """A SPID-shaped login response, optionally altered before pysaml2 signs it."""
        server = self.server()
        requested = self._requested(server, req.sp_entity_id, req.attr_index)
        identity = attributes if attributes is not None else {
            k: v for k, v in user.attributes.items() if k in requested}
        name_id = NameID(format=NAMEID_FORMAT_TRANSIENT, name_qualifier=self.entity_id,
                         text="_" + secrets.token_hex(16))
        resp = server.create_authn_response(
            identity={k: [v] for k, v in identity.items()},
            in_response_to=in_response_to or req.id,
            destination=destination or req.acs_url,
            sp_entity_id=req.sp_entity_id,
            name_id=name_id,
            authn={"class_ref": acr or self.answer_level(req, user) or req.acr,
                   "authn_instant": int(datetime.now(UTC).timestamp())},
            sign_response=False, sign_assertion=False)
        root = etree.fromstring(str(resp).encode())
        self._shape(root)
        if audience is not None:
            for aud in root.iter(f"{{{SAML}}}Audience"):
                aud.text = audience
        if mutate is not None:
            mutate(root)
        return self.sign(etree.tostring(root), assertion=sign_assertion, response=sign_response)

    def error_xml(self, req: IdpRequest, spid_code: int, *, sign: bool = True) -> bytes:
        """A SPID anomaly response: Responder / AuthnFailed / ``ErrorCode nr<NN>``."""
        server = self.server()
        resp = server.create_error_response(
            req.id, req.acs_url, (RESPONDER, f"ErrorCode nr{spid_code}"), sign=False)
        root = etree.fromstring(str(resp).encode())
        code = _child(_child(root, f"{{{SAMLP}}}Status"), f"{{{SAMLP}}}StatusCode")
        for child in list(code):
            code.remove(child)
        etree.SubElement(code, f"{{{SAMLP}}}StatusCode", Value=AUTHN_FAILED)
        self._shape(root)
        return self.sign(etree.tostring(root), assertion=False, response=sign)

    @cached_property
    def _signing(self) -> tuple[xmlsec.Key, str]:
        """The signing key (parsed once) and its certificate as the template carries it."""
        key = xmlsec.Key.from_file(str(self.sign_key_file), xmlsec.constants.KeyDataFormatPem)
        cert_b64 = "".join(Path(self.sign_cert_file).read_text().splitlines()[1:-1])
        return key, cert_b64

    def sign(self, xml: bytes, *, assertion: bool = True, response: bool = True) -> bytes:
        """Sign the Assertion, then the Response: pysaml2's template, libxmlsec1's signature."""
        key, cert_b64 = self._signing
        root = etree.fromstring(xml)
        steps = (["assertion"] if assertion else []) + (["response"] if response else [])
        for step in steps:
            elem = root.find(f"{{{SAML}}}Assertion") if step == "assertion" else root
            if elem is None:
                continue
            tmpl = pre_signature_part(elem.get("ID"), cert_b64, digest_alg=DIGEST_SHA256,
                                      sign_alg=SIG_RSA_SHA256)
            signature = etree.fromstring(str(tmpl).encode())
            _child(elem, f"{{{SAML}}}Issuer").addnext(signature)
            xmlsec.tree.add_ids(elem, ["ID"])
            ctx = xmlsec.SignatureContext()
            ctx.key = key
            ctx.sign(signature)
        return etree.tostring(root)

    @staticmethod
    def _requested(server: Server, sp: str, index: str | None = None) -> set[str]:
        """The attributes the SP's metadata asks for under ``index`` (the service named
        in the request; pysaml2 gives them all without one)."""
        try:
            spec = server.metadata.attribute_requirement(sp, index) or {}
        except Exception:
            return set()
        return {a["name"] for a in spec.get("required", []) + spec.get("optional", [])}

    @staticmethod
    def encode(xml: bytes) -> str:
        return base64.b64encode(xml).decode()


def _child(parent: etree._Element, tag: str) -> etree._Element:
    """The child pysaml2 always writes (a missing one is a bug of this test IdP)."""
    found = parent.find(tag)
    if found is None:
        raise ValueError(f"test IdP: no {tag} in pysaml2's output")
    return found


def _spid_shape(root: etree._Element) -> None:
    """What SPID wants beyond pysaml2's defaults: entity Format on every Issuer."""
    for issuer in root.iter(f"{{{SAML}}}Issuer"):
        issuer.set("Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:entity")
    _bare_attribute_names(root)


def _cie_shape(root: etree._Element) -> None:
    """CIE ID's shape: Issuers without Format (SAML core: entity implied)."""
    for issuer in root.iter(f"{{{SAML}}}Issuer"):
        if "Format" in issuer.attrib:
            del issuer.attrib["Format"]
    _bare_attribute_names(root)


def _single_values(root: etree._Element) -> None:
    """pysaml2 repeats a value once per AttributeConsumingService of the SP's metadata that
    asks for it; real SPID IdPs and FICEP send each value once."""
    for attr in root.iter(f"{{{SAML}}}Attribute"):
        seen: set[str | None] = set()
        for value in list(attr.iter(f"{{{SAML}}}AttributeValue")):
            if value.text in seen:
                attr.remove(value)
            seen.add(value.text)


def _bare_attribute_names(root: etree._Element) -> None:
    # pysaml2 maps names to urn:mace:...; SPID and CIE use the bare names (kept as
    # FriendlyName).
    _single_values(root)
    for attr in root.iter(f"{{{SAML}}}Attribute"):
        friendly = attr.get("FriendlyName")
        if friendly:
            del attr.attrib["FriendlyName"]
            attr.set("Name", friendly)


_SHAPES: dict[str, Callable[[etree._Element], None]] = {
    "spid": _spid_shape, "cie": _cie_shape, "eidas": _spid_shape}  # FICEP answers as SPID
_NAMES = {"spid": "Varco Test IdP", "cie": "Varco Test IdP CIE",
          "eidas": "Varco Test FICEP (eIDAS)"}
