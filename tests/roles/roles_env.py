"""Helpers for the role tests: demo brokers with the demo directory, RPs, the role page."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

from broker.config import DirectorySettings
from tests.oidc.oidc_helpers import RP, Browser, Pending, hidden

MARIO = "RSSMRA80A01H501U"
ISEE_SECRET = "isee-desk-secret"
PORTALE_SECRET = "portale-deleghe-secret"


def demo_directory(**kw: Any) -> DirectorySettings:
    return DirectorySettings(demo=True, **kw)


def isee_rp(base: str) -> RP:
    return RP(base, "isee-desk", f"{base}/demo-rp/isee-desk/callback", ISEE_SECRET,
              scope="openid profile fiscal_number abilitazioni")


def portale_rp(base: str, scope: str = "openid profile fiscal_number abilitazioni") -> RP:
    return RP(base, "portale-deleghe", f"{base}/demo-rp/portale-deleghe/callback",
              PORTALE_SECRET, scope=scope)


def role_buttons(page: str) -> dict[str, str]:
    """Title -> option key of every role button on a role page."""
    found = re.findall(r'<button type="submit" name="role" value="([^"]+)" class="button">'
                       r'([^<]+)</button>', page)
    return {html.unescape(title).removesuffix(" ✓").strip(): key for key, title in found}


def choose(browser: Browser, page: httpx.Response, title_part: str) -> httpx.Response:
    """Post the role choice whose title contains ``title_part``; returns the response."""
    buttons = role_buttons(page.text)
    key = next(k for t, k in buttons.items() if title_part in t)
    data = {"csrf_token": hidden(page.text, "csrf_token"), "role": key}
    action = "/roles"
    if 'name="tx"' in page.text:
        data["tx"] = hidden(page.text, "tx")
        action = "/roles/choose"
    return browser.http.post(action, data=data)


def tokens_for(rp: RP, browser: Browser, pending: Pending, code: str) -> dict[str, Any]:
    response = rp.exchange(browser.http, pending, code)
    assert response.status_code == 200, response.text
    return response.json()
