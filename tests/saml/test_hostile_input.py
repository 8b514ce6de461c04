"""Mangled SAML messages raise a ``SamlError`` (a readable 4xx page), never anything else.

An attacker can post anything at the ACS and the SLO endpoint; a confused IdP can sign
anything. Any other exception escaping the validators would be a 500 and a stack trace
in the log instead of our refusal page. Three kinds of damage, on real pysaml2-signed
messages:

* **signed by the IdP** after the change (``response_xml(mutate=...)``): every element
  removed or repeated, every attribute removed, every attribute and text set to hostile
  values, so the checks that run *after* the signature verifies see them too;
* **after signing** (what an attacker in the middle can do): the same edits on the
  signed tree, signatures included;
* **random byte damage** (flips, cuts, insertions), seeded so a failure reproduces.
"""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from lxml import etree
from saml_helpers import IDP_ID, SP, SamlPair, make_pair

from providers.saml.errors import SamlError, XmlError
from providers.saml.keys import KeyPair
from providers.saml.logout import build_logout_request, read_logout
from providers.saml.response import Expected, SamlAssertion, SamlStatus, validate_response
from providers.saml.signing import sign_xml
from providers.saml.xmlutil import b64_xml, inflate_b64, parse_time

# Values that broke or could break a parser or a comparison: empty, blank, far past and
# far future times (adding the clock skew to 9999-12-31 overflowed), dates without time,
# non-ASCII digits, long text, an ID reference.
HOSTILE = ["", " ", "x", "-1", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
           "2018-09-04", "٢٠١٨-09-04T10:00:00Z", "A" * 300, "#_dup"]

Edit = Callable[[etree._Element], None]


@pytest.fixture(scope="module")
def saml(tmp_path_factory: pytest.TempPathFactory) -> SamlPair:
    return make_pair(tmp_path_factory.mktemp("hostile"))


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str)]


def _edits(template: etree._Element) -> Iterator[tuple[str, Edit]]:
    """Every single edit of ``template``'s shape; each edit finds its element by position,
    so it applies to any tree of the same shape (a new response for the same user)."""
    for i, elem in enumerate(_elements(template)):
        name = etree.QName(elem).localname
        if i:  # the root stays
            yield f"remove {name}#{i}", partial(_remove, i)
            yield f"repeat {name}#{i}", partial(_repeat, i)
        attributes = [a for a in elem.attrib if isinstance(a, str)]
        for attr in attributes:
            yield f"drop {name}#{i} @{attr}", partial(_drop_attr, i, attr)
        for value in HOSTILE:
            yield f"text of {name}#{i} = {value[:12]!r}", partial(_set_text, i, value)
            for attr in attributes:
                yield (f"{name}#{i} @{attr} = {value[:12]!r}",
                       partial(_set_attr, i, attr, value))


def _remove(i: int, root: etree._Element) -> None:
    elem = _elements(root)[i]
    parent = elem.getparent()
    assert parent is not None
    parent.remove(elem)


def _repeat(i: int, root: etree._Element) -> None:
    elem = _elements(root)[i]
    elem.addnext(copy.deepcopy(elem))


def _set_text(i: int, value: str, root: etree._Element) -> None:
    _elements(root)[i].text = value


def _set_attr(i: int, attr: str, value: str, root: etree._Element) -> None:
    _elements(root)[i].set(attr, value)


def _drop_attr(i: int, attr: str, root: etree._Element) -> None:
    del _elements(root)[i].attrib[attr]


def _outcome(xml: bytes, exp: Expected) -> str:
    """'ok', 'refused' or, for anything else that escaped, its type and message."""
    try:
        result = validate_response(xml, exp)
    except SamlError:
        return "refused"
    except Exception as exc:  # what this test is looking for
        return f"{type(exc).__name__}: {exc}"
    assert isinstance(result, SamlAssertion | SamlStatus)
    return "ok"


def test_responses_signed_by_the_idp_with_any_field_mangled_raise_only_saml_errors(
        saml: SamlPair) -> None:
    req, exp = saml.request()
    user = saml.idp.users["mario.rossi"]
    shapes: list[etree._Element] = []
    saml.idp.response_xml(req, user, mutate=shapes.append)  # the shape the IdP signs
    outcomes: dict[str, str] = {}
    for label, edit in _edits(shapes[0]):
        try:
            xml = saml.idp.response_xml(req, user, mutate=edit)
        except Exception:  # the IdP itself cannot sign it (its Issuer removed): no message
            continue
        outcomes[label] = _outcome(xml, exp)
    escaped = {k: v for k, v in outcomes.items() if v not in ("ok", "refused")}
    assert not escaped, escaped
    assert list(outcomes.values()).count("refused") > 100  # the sweep reached the checks


def test_signed_responses_edited_afterwards_raise_only_saml_errors(saml: SamlPair) -> None:
    req, exp = saml.request()
    signed = saml.idp.response_xml(req, saml.idp.users["anna.bianchi"])
    escaped = {}
    for label, edit in _edits(etree.fromstring(signed)):
        root = etree.fromstring(signed)
        edit(root)
        outcome = _outcome(etree.tostring(root), exp)
        if outcome not in ("ok", "refused"):
            escaped[label] = outcome
    assert not escaped, escaped


@pytest.mark.parametrize("seed", range(4))
def test_random_byte_damage_raises_only_saml_errors(saml: SamlPair, seed: int) -> None:
    req, exp = saml.request()
    signed = saml.idp.response_xml(req, saml.idp.users["mario.rossi"])
    failure = saml.idp.error_xml(req, 20)
    rng = random.Random(seed)
    escaped = {}
    for n in range(150):
        data = bytearray(rng.choice((signed, failure)))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(data))
            kind = rng.randrange(4)
            if kind == 0:
                data[i] = rng.randrange(256)
            elif kind == 1:
                del data[i:i + rng.randint(1, 40)]
            elif kind == 2:
                data[i:i] = rng.choice((b"<!--c-->", b"&#0;", b"<x/>", b'"', b"\xff", b"]]>"))
            else:
                data[i:i] = data[i:i + rng.randint(1, 200)]
        outcome = _outcome(bytes(data), exp)
        if outcome not in ("ok", "refused"):
            escaped[f"seed {seed} #{n}"] = outcome
    assert not escaped, escaped


def test_an_assertion_valid_until_the_end_of_time_is_not_a_crash(saml: SamlPair) -> None:
    """9999-12-31T23:59:59Z plus the clock skew overflowed (OverflowError, a 500). The
    IdP signed it, so it is accepted; the replay mark then lasts as long."""
    req, exp = saml.request()

    def forever(root: etree._Element) -> None:
        for elem in root.iter("{*}SubjectConfirmationData", "{*}Conditions"):
            elem.set("NotOnOrAfter", "9999-12-31T23:59:59Z")

    result = validate_response(
        saml.idp.response_xml(req, saml.idp.users["mario.rossi"], mutate=forever), exp)
    assert isinstance(result, SamlAssertion)
    assert result.not_on_or_after.year == 9999


def test_times_in_other_scripts_digits_are_refused() -> None:
    """``\\d`` matches Arabic-Indic digits and ``int`` reads them: a lenient pattern
    would have accepted ``٢٠١٨-09-04T10:00:00Z`` as 2018."""
    with pytest.raises(XmlError, match="badly formatted time"):
        parse_time("٢٠١٨-09-04T10:00:00Z")
    assert parse_time("2018-09-04T10:00:00Z") == datetime(2018, 9, 4, 10, tzinfo=UTC)


def test_logout_messages_with_any_field_mangled_raise_only_saml_errors(saml: SamlPair) -> None:
    info = saml.registry.get(IDP_ID)
    assert info is not None
    idp_keys = KeyPair.load(saml.idp.key_file, saml.idp.cert_file)
    now = datetime.now(UTC).replace(microsecond=0)
    template = etree.fromstring(build_logout_request(
        request_id="_logout1", now=now, sp_entity_id=IDP_ID, destination=SP.slo_url,
        name_id="_transient", name_qualifier=IDP_ID, session_index="_s1"))
    outcomes = {}
    for label, edit in _edits(template):
        root = copy.deepcopy(template)
        edit(root)
        try:
            xml = sign_xml(etree.tostring(root), idp_keys)
        except Exception:  # python3-saml cannot sign what has no ID
            continue
        for where, data in (("signed", xml), ("cut", xml[: len(xml) // 2])):
            try:
                read_logout(data, idp=info, slo_url=SP.slo_url, now=now,
                            skew=timedelta(seconds=60), signed_query=None)
                outcome = "ok"
            except SamlError:
                outcome = "refused"
            except Exception as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            outcomes[f"{label} ({where})"] = outcome
    escaped = {k: v for k, v in outcomes.items() if v not in ("ok", "refused")}
    assert not escaped, escaped
    assert "ok" in outcomes.values() and "refused" in outcomes.values()


@pytest.mark.parametrize("seed", range(2))
def test_binding_decoders_raise_only_xml_errors(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=%&\x00é€ "
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        for decode in (b64_xml, inflate_b64):
            with contextlib.suppress(XmlError):  # anything else fails the test
                decode(text)
