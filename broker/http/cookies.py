"""``Set-Cookie`` headers for the login path, written directly.

Starlette's ``Response.set_cookie`` builds each header through ``http.cookies``
(a ``SimpleCookie``, a ``Morsel``, sorting and quoting): ~10 us per cookie, and a
login sets three or four. Our cookie values are random tokens and language codes, which
need no quoting, so ``set_cookie`` writes the header itself, byte for byte what Starlette
writes (attributes in ``Morsel``'s order), and hands anything else to Starlette.
"""

from __future__ import annotations

import re
from typing import Literal

from starlette.responses import Response

# ``http.cookies``' legal characters: a non-empty value made of these is written as it is.
_PLAIN = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~:]*")


def set_cookie(response: Response, key: str, value: str, *, max_age: int | None = None,
               path: str = "/", secure: bool, httponly: bool = True,
               samesite: Literal["lax", "strict", "none"] = "lax") -> None:
    """``response.set_cookie(...)`` with the same header, without ``http.cookies``."""
    if not (_PLAIN.fullmatch(key) and value and _PLAIN.fullmatch(value)
            and (max_age is None or type(max_age) is int)):
        response.set_cookie(key, value, max_age=max_age, path=path, secure=secure,
                            httponly=httponly, samesite=samesite)
        return
    header = f"{key}={value}"
    if httponly:
        header += "; HttpOnly"
    if max_age is not None:
        header += f"; Max-Age={max_age}"
    if path:
        header += f"; Path={path}"
    header += f"; SameSite={samesite}"
    if secure:
        header += "; Secure"
    response.raw_headers.append((b"set-cookie", header.encode("latin-1")))
