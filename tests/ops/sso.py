"""Logins as a browser does them, through the role choice page when one is shown.

Demo users may hold abilitazioni (``broker.login.roles``): then the broker asks which role to
act in. These tests are about operations, not roles, so they take the first option.
"""

from __future__ import annotations

import html
import re

import httpx

from tests.oidc.oidc_helpers import Browser, Pending, code_from, hidden


def through_roles(browser: Browser, response: httpx.Response, pending: Pending) -> str:
    response = browser.walk(response, pending.rp.redirect_uri)
    if response.status_code == 200 and 'name="role"' in response.text:
        form = re.search(r'<form method="post" action="([^"]+)"', response.text)
        offered = re.search(r'name="role" value="([^"]+)"', response.text)
        assert form is not None and offered is not None, response.text
        action, role = html.unescape(form.group(1)), offered.group(1)
        fields = {"csrf_token": hidden(response.text, "csrf_token"), "role": role}
        if 'name="tx"' in response.text:
            fields["tx"] = hidden(response.text, "tx")
        response = browser.walk(browser.http.post(action, data=fields),
                                pending.rp.redirect_uri)
    return code_from(response, pending)


def login_code(browser: Browser, pending: Pending, cf: str, pin: str) -> str:
    """PIN login from scratch; the code the RP receives."""
    stop = pending.rp.redirect_uri
    return through_roles(browser, browser.pin_login(browser.authorize(pending), cf, pin, stop),
                         pending)


def sso_code(browser: Browser, pending: Pending) -> str:
    """Authorize with the session this browser holds (single sign-on)."""
    return through_roles(browser, browser.authorize(pending), pending)
