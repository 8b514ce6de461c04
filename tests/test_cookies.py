"""``broker.http.cookies.set_cookie`` writes exactly the header Starlette would."""

from __future__ import annotations

import itertools

import pytest
from starlette.responses import Response

from broker.http.cookies import set_cookie

VALUES = ["Zx9-_aB3kQ0tokenUrlsafe", "it", "", "a b", 'quo"te', "semi;colon", "comma,x",
          "caffè", "back\\slash", "odd!#$%&'*+.^_`|~:"]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize(("max_age", "path", "secure", "httponly", "samesite"), list(
    itertools.product([None, 0, 28800], ["/", "/spid/acs"], [True, False], [True, False],
                      ["lax", "none", "strict"])))
def test_the_header_is_starlettes(value: str, max_age: int | None, path: str, secure: bool,
                                  httponly: bool, samesite: str) -> None:
    ours, theirs = Response(), Response()
    set_cookie(ours, "varco_x", value, max_age=max_age, path=path, secure=secure,
               httponly=httponly, samesite=samesite)  # type: ignore[arg-type]
    theirs.set_cookie("varco_x", value, max_age=max_age, path=path, secure=secure,
                      httponly=httponly, samesite=samesite)  # type: ignore[arg-type]
    assert ours.headers.getlist("set-cookie") == theirs.headers.getlist("set-cookie")


def test_a_session_cookie_reads_as_a_browser_expects() -> None:
    response = Response()
    set_cookie(response, "varco_session", "abc", max_age=600, secure=True)
    assert response.headers["set-cookie"] == (
        "varco_session=abc; HttpOnly; Max-Age=600; Path=/; SameSite=lax; Secure")
