"""The form reader of the login path: byte for byte what ``urllib`` decodes, and bounded."""

from __future__ import annotations

import base64
import random
from urllib.parse import parse_qsl, quote_plus, unquote_plus, urlencode

import pytest

from broker.http.forms import MAX_FIELDS, BadForm, parse_urlencoded, unquote_field

ALPHABET = "ab+/=%2B%2f%3D%3d%20%41%zz%e2%82%ac €&;~.-_ "


def test_unquote_field_equals_unquote_plus_on_random_and_base64_text() -> None:
    rng = random.Random(7)
    samples = ["", "+", "%", "%2", "%2B", "%2b%2F", "a+b", "%E2%82%AC", "%zz", "é+%3D"]
    samples += ["".join(rng.choice(ALPHABET) for _ in range(rng.randrange(40)))
                for _ in range(3000)]
    samples += [quote_plus(base64.b64encode(rng.randbytes(n)).decode()) for n in range(200)]
    for value in samples:
        assert unquote_field(value) == unquote_plus(value), value


def test_a_saml_post_reads_as_urllib_reads_it() -> None:
    saml = base64.b64encode(random.Random(1).randbytes(9000)).decode()
    body = urlencode({"SAMLResponse": saml, "RelayState": "r/1+2=3",
                      "empty": "", "città": "perché"}).encode()
    assert parse_urlencoded(body) == parse_qsl(body.decode(), keep_blank_values=True)
    assert dict(parse_urlencoded(body))["SAMLResponse"] == saml
    assert parse_urlencoded(b"a=1&&b&c=") == [("a", "1"), ("b", ""), ("c", "")]


def test_too_many_fields_is_refused() -> None:
    assert len(parse_urlencoded(b"&".join([b"x=1"] * MAX_FIELDS))) == MAX_FIELDS
    with pytest.raises(BadForm) as err:
        parse_urlencoded(b"&".join([b"x=1"] * (MAX_FIELDS + 1)))
    assert err.value.status == 400 and err.value.code == "invalid_request"
