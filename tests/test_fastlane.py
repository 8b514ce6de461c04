"""The fast lane is a route like any other for names, methods and unknown paths."""

from __future__ import annotations

import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Match, NoMatchFound, Router

from broker.fastlane import FastLane, HotRoute


async def _ok(request):  # pragma: no cover - never called here
    return PlainTextResponse("ok")


def _scope(path: str, method: str = "GET") -> dict:
    return {"type": "http", "path": path, "method": method, "root_path": ""}


def test_exact_paths_match_other_methods_are_partial_and_the_rest_is_not_ours() -> None:
    lane = FastLane()
    lane.add(HotRoute("/token", _ok, ("POST",)))
    lane.add(HotRoute("/acs", _ok, ("GET", "POST")), prefix="/spid")
    assert lane.paths == ["/spid/acs", "/token"]
    match, child = lane.matches(_scope("/token", "POST"))
    assert match is Match.FULL and child["route"].path == "/token"
    assert lane.matches(_scope("/token", "GET"))[0] is Match.PARTIAL  # Starlette's 405
    assert lane.matches(_scope("/token/"))[0] is Match.NONE
    assert lane.matches(_scope("/spid/acs"))[0] is Match.FULL
    assert lane.matches({"type": "websocket", "path": "/token"})[0] is Match.NONE
    with pytest.raises(ValueError):
        lane.add(HotRoute("/x/{id}", _ok, ("GET",)))


def test_url_path_for_answers_for_its_routes_and_passes_on_others() -> None:
    lane = FastLane()
    lane.add(HotRoute("/token", _ok, ("POST",)))
    router = Router(routes=[lane])
    assert router.url_path_for("_ok") == "/token"
    with pytest.raises(NoMatchFound):
        router.url_path_for("unknown")
