"""Reading ``application/x-www-form-urlencoded`` bodies, fast for SAML's large fields.

A SAML response arrives as one 10-20 KB base64 field. ``urllib``'s and python-multipart's
decoders unescape it through a regular expression, ~80 us per response; base64 needs
only ``%2B``, ``%2F`` and ``%3D`` undone, three C-level replaces. Any other escape takes
the general decoder, so the result is always exactly ``urllib.parse.unquote_plus``'s.
Other content types (multipart) go to Starlette's parser.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from starlette.requests import Request

from broker.errors import BrokerError, Text

MAX_FIELDS = 1000  # Starlette's default for a form
# A request body: the app's limit (FastAPI ``max_body_size``, a route may raise it) and
# the fast lane's forms'. The largest legitimate one on the login path is a SAML response
# of at most 256 KiB decoded (``providers.saml.xmlutil``), ~350 KiB as a base64 field.
MAX_BODY_BYTES = 1024 * 1024


class BadForm(BrokerError):
    code = "invalid_request"  # the OAuth error too: /token answers it as JSON
    status = 400
    message = Text("Il modulo inviato non è leggibile.", "The submitted form is unreadable.")


class FormTooLarge(BadForm):
    status = 413
    message = Text("Il modulo inviato è troppo grande.", "The submitted form is too large.")


def unquote_field(value: str) -> str:
    """``unquote_plus(value)``, in C for the characters base64 and tokens use."""
    if "%" not in value:
        return value.replace("+", " ")
    out = (value.replace("+", " ").replace("%2B", "+").replace("%2b", "+")
           .replace("%2F", "/").replace("%2f", "/").replace("%3D", "=").replace("%3d", "="))
    # The replacements never make a "%": one left over is another escape (or a stray
    # "%"), and then the general decoder reads the original.
    return out if "%" not in out else unquote_plus(value)


def parse_urlencoded(body: bytes) -> list[tuple[str, str]]:
    """The fields of a urlencoded body, in order, blank values kept; ``BadForm`` when it
    has more than ``MAX_FIELDS`` fields."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:  # raw non-ASCII bytes: not what a browser sends
        text = body.decode("utf-8", errors="replace")
    pairs = []
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote_field(name), unquote_field(value)))
        if len(pairs) > MAX_FIELDS:
            raise BadForm(f"more than {MAX_FIELDS} form fields")
    return pairs


async def form_pairs(request: Request) -> list[tuple[str, str]]:
    """Every text field of the request's form (urlencoded or multipart), in order.

    At most ``MAX_BODY_BYTES``: the fast lane's endpoints use this and run outside the
    app's body limit. ``FormTooLarge`` (413) before reading a body declared too large,
    or as soon as one sent in chunks goes past the limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise FormTooLarge(f"content-length {declared[:20]!r} over {MAX_BODY_BYTES}")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        return parse_urlencoded(await _body(request))
    if media == "multipart/form-data" and declared is None:  # no cap on Starlette's parser
        raise FormTooLarge("a multipart form without content-length")
    form = await request.form()
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise FormTooLarge(f"body over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
