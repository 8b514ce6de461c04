"""Admin APIs accept only an admin client's own credentials, never a citizen's cookie."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

BACKOFFICE = ("backoffice", "backoffice-secret")


@pytest.mark.parametrize(("auth", "want_status", "want_error"), [
    (BACKOFFICE, 200, None),
    (("backoffice", "wrong-secret"), 401, "invalid_client"),
    (None, 401, "invalid_client"),
    (("demo-rp", "demo-rp-secret"), 403, "insufficient_scope"),  # an RP, not an admin
    (("nobody", "x"), 401, "invalid_client"),
])
def test_admin_audit_verify_needs_an_admin_client(broker, auth, want_status, want_error):
    with broker.client() as http:
        r = http.get("/admin/audit/verify", auth=auth)
    assert r.status_code == want_status, r.text
    body = r.json()
    if want_error:
        assert body["error"] == want_error and body["error_id"]
        assert "intact" not in body
    else:
        assert body["intact"] is True


def test_citizen_session_cookie_is_not_admin_auth(broker):
    with broker.client() as http:
        http.cookies.set("varco_session", "anything")
        http.cookies.set("varco_browser", "x" * 32)
        r = http.get("/admin/audit/entries")
    assert r.status_code == 401


def test_audit_entries_record_the_broker_start(broker):
    with broker.client() as http:
        r = http.get("/admin/audit/entries", params={"kind": "broker.start"}, auth=BACKOFFICE)
    assert r.status_code == 200
    [entry] = r.json()["entries"]
    assert entry["data"]["issuer"] == broker.url
