"""``broker.login.interaction.unmet``: what a session lacks for a request, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broker.login.interaction import Unmet, unmet
from broker.model import (
    AuthEvent,
    AuthRequest,
    BrokerSession,
    Decision,
    Identity,
    LoginRecord,
    Privilege,
)
from providers.pin.acr import ACR_PIN
from providers.spid.levels import ACR_SPID_L2, ACR_SPID_L3

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def session(privilege: Privilege, acr: str = ACR_PIN, *, age: int = 60,
            conversion: bool = False) -> BrokerSession:
    attributes = {"pin_conversion": "pending", "pin_conversion_id": 7} if conversion else {}
    event = AuthEvent(provider="pin", subject="x", attributes=attributes, acr=acr,
                      amr=("pin",), auth_time=NOW - timedelta(seconds=age))
    record = LoginRecord(event=event, identity=Identity(fiscal_code="BNCLRA85M41Z404W"),
                         decision=Decision(allow=True, privilege=privilege, acr=acr))
    return BrokerSession(sid="s", created_at=NOW, expires_at=NOW + timedelta(hours=1),
                         logins=(record,))


def request(**kw) -> AuthRequest:
    base = {"tx_id": "t", "client_id": "c", "client_name": "C", "redirect_uri": "https://x/cb",
            "scopes": ("openid",), "code_challenge": "x" * 43, "created_at": NOW}
    return AuthRequest(**{**base, **kw})


DISP, ORD = Privilege.DISPOSITIVO, Privilege.ORDINARIO


@pytest.mark.parametrize(("name", "sess", "req", "fresh", "want"), [
    ("no session", None, request(), False, Unmet.LOGIN),
    ("enough", session(ORD), request(), False, None),
    ("prompt=login asks again", session(DISP), request(prompt=("login",)), False, Unmet.LOGIN),
    ("prompt=login just honoured", session(DISP), request(prompt=("login",)), True, None),
    ("max_age exceeded", session(DISP, age=600), request(max_age=300), False, Unmet.LOGIN),
    ("ordinario for dispositivo", session(ORD), request(required_privilege=DISP), False,
     Unmet.STEP_UP),
    ("dispositivo for dispositivo", session(DISP), request(required_privilege=DISP), False, None),
    ("L2 for L3", session(DISP, ACR_SPID_L2), request(required_privilege=DISP,
                                                   required_acr=ACR_SPID_L3), False,
     Unmet.STEP_UP),
    ("pending conversion, RP accepts filing", session(ORD, conversion=True),
     request(required_privilege=DISP, accept_filed_with_ordinario=True), False, None),
    ("pending conversion, RP does not accept filing", session(ORD, conversion=True),
     request(required_privilege=DISP), False, Unmet.STEP_UP),
    ("no conversion, RP accepts filing", session(ORD),
     request(required_privilege=DISP, accept_filed_with_ordinario=True), False, Unmet.STEP_UP),
])
def test_unmet(name, sess, req, fresh, want) -> None:
    assert unmet(sess, req, NOW, fresh=fresh) is want, name
