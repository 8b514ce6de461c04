"""XML and query-string signatures, in process (xmlsec through python3-saml).

Verification is strict on purpose, because this is where SAML breaks:

* the key comes from the IdP's **metadata** certificate, never from the message's
  ``KeyInfo``;
* the signature must be a direct child of the element it signs and reference it by
  its own ``ID`` (no detached or wrapped references, so XML signature wrapping fails);
* only RSA-SHA256/384/512 with SHA-256/384/512 digests, and only the enveloped and
  exclusive-c14n transforms (no XSLT, no XPath).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from functools import lru_cache

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from broker.errors import ConfigError
from providers.saml.errors import SignatureError as SignatureError  # re-exported
from providers.saml.keys import KeyPair
from providers.saml.xmlutil import RSA_SHA256, SHA256, q

SIG_ALGS = {
    RSA_SHA256: xmlsec.constants.TransformRsaSha256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": xmlsec.constants.TransformRsaSha384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": xmlsec.constants.TransformRsaSha512,
}
DIGEST_ALGS = {
    SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
}
C14N_ALGS = {
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
}
TRANSFORMS = {"http://www.w3.org/2000/09/xmldsig#enveloped-signature", *C14N_ALGS}
# What xmlsec may run on a Reference: the transforms and digests above, nothing else.
_REFERENCE_TRANSFORMS = (
    xmlsec.constants.TransformEnveloped, xmlsec.constants.TransformExclC14N,
    xmlsec.constants.TransformExclC14NWithComments, xmlsec.constants.TransformSha256,
    xmlsec.constants.TransformSha384, xmlsec.constants.TransformSha512)


def sign_xml(xml: bytes | str, keys: KeyPair) -> bytes:
    """Embed an enveloped RSA-SHA256 signature after the Issuer (or first in metadata)."""
    signed = OneLogin_Saml2_Utils.add_sign(xml, keys.key_pem, keys.cert_pem)
    return signed if isinstance(signed, bytes) else signed.encode()


@lru_cache(maxsize=8)
def _private_key(key_pem: str) -> rsa.RSAPrivateKey:
    """The SP key parsed once: python3-saml would re-parse the PEM for every signature."""
    key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        # Our configuration, not the IdP's answer: a 500 and the operator's message.
        raise ConfigError(["SP key is not RSA: SAML signatures need an RSA key"])
    return key


def sign_query(query: str, keys: KeyPair) -> str:
    """RSA-SHA256 (PKCS#1 v1.5) over ``SAMLRequest=..&RelayState=..&SigAlg=..``.

    The same bytes xmlsec's RSA_SHA256 transform produces, with the key parsed once.
    """
    sig = _private_key(keys.key_pem).sign(query.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(sig).decode()


def _verify_key(cert: x509.Certificate) -> xmlsec.Key:
    """The xmlsec key of a metadata certificate, loaded once per certificate."""
    return _public_key(cert.public_bytes(serialization.Encoding.DER))


@lru_cache(maxsize=64)
def _public_key(cert_der: bytes) -> xmlsec.Key:
    """The certificate's public key alone, as an xmlsec key (cached on the DER bytes).

    Why the bare public key and not the certificate: assigning a key to a context
    duplicates it (``xmlSecKeyDuplicate``), and duplicating a certificate key copies the
    X.509 data, costing as much as loading it anew (~0.1 ms); a bare RSA key duplicates
    in microseconds. Trust is unchanged: the key still comes from the metadata
    certificate the registry checked (validity, size), never from the message. The cached
    object is never handed to a context itself, only duplicated into it, so sharing it
    between threads is read-only.
    """
    cert = x509.load_der_x509_certificate(cert_der)
    spki = cert.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return xmlsec.Key.from_memory(spki, xmlsec.constants.KeyDataFormatPem, None)


def verify_query(query: str, signature_b64: str, sig_alg: str,
                 certs: Iterable[x509.Certificate]) -> None:
    """Verify an HTTP-Redirect signature against trusted certificates."""
    transform = SIG_ALGS.get(sig_alg)
    if transform is None:
        raise SignatureError("signature algorithm refused")
    try:
        signature = base64.b64decode(signature_b64, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("signature not base64") from exc
    for cert in certs:
        ctx = xmlsec.SignatureContext()
        ctx.key = _verify_key(cert)
        try:
            ctx.verify_binary(query.encode(), transform, signature)
            return
        except xmlsec.Error:
            continue
    raise SignatureError("query signature does not verify")


def signature_of(elem: etree._Element) -> etree._Element | None:
    """The element's own enveloped signature (a direct ``ds:Signature`` child), if any."""
    found = elem.findall(q("ds", "Signature"))
    if len(found) > 1:
        raise SignatureError("more than one signature on one element")
    return found[0] if found else None


def verify_element(elem: etree._Element, certs: Iterable[x509.Certificate]) -> None:
    """Verify ``elem``'s enveloped signature with one of ``certs``; raise ``SignatureError``.

    The caller must already have checked that IDs are unique in the document.
    """
    sig = signature_of(elem)
    if sig is None:
        raise SignatureError("element not signed")
    elem_id = elem.get("ID")
    if not elem_id:
        raise SignatureError("signed element has no ID")
    _check_shape(sig, elem_id)
    xmlsec.tree.add_ids(elem.getroottree().getroot(), ["ID"])
    errors = []
    for cert in certs:
        ctx = xmlsec.SignatureContext()
        ctx.key = _verify_key(cert)
        ctx.set_enabled_key_data([xmlsec.constants.KeyDataX509])
        for t in _REFERENCE_TRANSFORMS:
            ctx.enable_reference_transform(t)
        try:
            ctx.verify(sig)
            return
        except xmlsec.Error as exc:
            errors.append(str(exc))
    raise SignatureError("signature does not verify with the IdP metadata certificate")


def _check_shape(sig: etree._Element, elem_id: str) -> None:
    info = sig.find(q("ds", "SignedInfo"))
    if info is None:
        raise SignatureError("no SignedInfo")
    c14n = info.find(q("ds", "CanonicalizationMethod"))
    method = info.find(q("ds", "SignatureMethod"))
    refs = info.findall(q("ds", "Reference"))
    if c14n is None or c14n.get("Algorithm") not in C14N_ALGS:
        raise SignatureError("canonicalization refused")
    if method is None or method.get("Algorithm") not in SIG_ALGS:
        raise SignatureError("signature algorithm refused (RSA-SHA256 or stronger)")
    if len(refs) != 1:
        raise SignatureError("exactly one Reference expected")
    ref = refs[0]
    if ref.get("URI") != f"#{elem_id}":
        raise SignatureError("signature does not reference the signed element")
    digest = ref.find(q("ds", "DigestMethod"))
    if digest is None or digest.get("Algorithm") not in DIGEST_ALGS:
        raise SignatureError("digest algorithm refused (SHA-256 or stronger)")
    for tr in ref.iterfind(f"{q('ds', 'Transforms')}/{q('ds', 'Transform')}"):
        if tr.get("Algorithm") not in TRANSFORMS or len(tr):
            raise SignatureError("transform refused")
    if sig.find(q("ds", "Object")) is not None:
        raise SignatureError("ds:Object not allowed in signature")
