"""Pages for citizens: the Jinja2 environment, language choice, browser binding and CSRF.

Every page gets ``lang``, ``t(it, en)``, ``csrf_token`` and ``other_lang_url``. The
browser carries one random ``varco_browser`` cookie; pending logins are bound to it and
the CSRF token is an HMAC of it, so a form posted from another site, or by another
browser, fails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from broker.errors import CsrfError
from broker.http.cookies import set_cookie

BROWSER_COOKIE = "varco_browser"
LANG_COOKIE = "varco_lang"
LANGUAGES = ("it", "en")


class Renderer:
    """Renders templates from ``broker/templates`` and every ``providers/*/templates``."""

    def __init__(self, secret_key: bytes, *, secure_cookies: bool,
                 extra_dirs: list[Path] | None = None):
        self._key = hashlib.sha256(b"varco-csrf\x00" + secret_key).digest()
        self.secure = secure_cookies
        dirs = [Path(__file__).parent.parent / "templates", *(extra_dirs or [])]
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(d)) for d in dirs]),
            autoescape=select_autoescape(default=True, default_for_string=True),
            auto_reload=False,
        )

    # --- browser binding and CSRF -------------------------------------------------
    def browser_id(self, request: Request) -> str:
        """This browser's id; a new one is made (and set on the response) when absent."""
        existing: str | None = getattr(request.state, "browser_id", None)
        if existing:
            return existing
        value = request.cookies.get(BROWSER_COOKIE, "")
        if not (16 <= len(value) <= 64):
            value = secrets.token_urlsafe(24)
            request.state.new_browser_id = True
        request.state.browser_id = value
        return value

    def csrf_token(self, request: Request) -> str:
        mac = hmac.new(self._key, self.browser_id(request).encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def verify_csrf(self, request: Request, token: str | None) -> None:
        if not request.cookies.get(BROWSER_COOKIE):
            raise CsrfError("no browser cookie on a form post")
        if not token or not hmac.compare_digest(token.encode(), self.csrf_token(request).encode()):
            raise CsrfError("CSRF token missing or wrong")

    def bind_cookies(self, request: Request, response: Response) -> Response:
        """Set the browser and language cookies that this request created or changed."""
        if getattr(request.state, "new_browser_id", False):
            set_cookie(response, BROWSER_COOKIE, request.state.browser_id, httponly=True,
                       secure=self.secure, samesite="lax", path="/")
        lang = request.query_params.get("lang")
        if lang in LANGUAGES and request.cookies.get(LANG_COOKIE) != lang:
            set_cookie(response, LANG_COOKIE, lang, httponly=True, secure=self.secure,
                       samesite="lax", path="/", max_age=365 * 86400)
        return response

    # --- language -----------------------------------------------------------------
    @staticmethod
    def language(request: Request, hint: tuple[str, ...] = ()) -> str:
        """Query ``lang``, then the cookie (or the language a cross-site return carried
        over, ``LoginHub.adopt``), then the RP's ``ui_locales``; Italian by default."""
        cookie = request.cookies.get(LANG_COOKIE) or getattr(request.state, "varco_lang", None)
        for candidate in (request.query_params.get("lang"), cookie, *hint):
            if candidate:
                code = candidate.split("-")[0].lower()
                if code in LANGUAGES:
                    return code
        return "it"

    # --- rendering ----------------------------------------------------------------
    def page(self, request: Request, name: str, context: dict[str, Any],
             status: int = 200) -> Response:
        """``render`` in the language of the login this request serves, if any.

        The hub keeps the login it loaded on the request (``varco_auth``), so a page
        never reads the store for the RP's ``ui_locales`` (no I/O: safe on the loop).
        """
        auth = getattr(request.state, "varco_auth", None)
        hint: tuple[str, ...] = auth.ui_locales if auth is not None else ()
        return self.render(request, name, context, status, ui_locales=hint)

    def render(self, request: Request, name: str, context: dict[str, Any],
               status: int = 200, *, ui_locales: tuple[str, ...] = ()) -> Response:
        lang = self.language(request, ui_locales)
        other = "en" if lang == "it" else "it"
        params = {k: v for k, v in request.query_params.items() if k != "lang"}
        query = urlencode({**params, "lang": other}) if request.method == "GET" else \
            urlencode({"lang": other})
        base = context.get("lang_url")
        if base:  # pages shown after a POST name the GET page the switch should lead to
            other_url = f"{base}{'&' if '?' in base else '?'}lang={other}"
        else:
            other_url = f"{request.url.path}?{query}"
        ctx = {
            "lang": lang,
            "t": (lambda it, en: en if lang == "en" else it),
            "csrf_token": self.csrf_token(request),
            "other_lang": other,
            "other_lang_url": other_url,
            **context,
        }
        html = self.env.get_template(name).render(ctx)
        response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
        return self.bind_cookies(request, response)


SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self' https: http:; "
        "base-uri 'none'"
    ),
}
