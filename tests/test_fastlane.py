"""The fast lane is a route like any other for names, methods and unknown paths."""

from __future__ import annotations

import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Match, NoMatchFound, Router
from starlette.types import Scope

from broker.http.fastlane import FastLane, HotRoute


async def _ok(request):  # pragma: no cover - never called here
    return PlainTextResponse("ok")


def _scope(path: str, method: str = "GET") -> Scope:
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


class _Refused(Exception):
    pass


async def _refuse(request):
    raise _Refused("no")


async def _echo(request):
    return PlainTextResponse(f"{request.method} {request.url.path} "
                             f"{request.app.state.tag} {request.url_for('_echo')}")


def _dispatched_app():
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    lane = FastLane()
    lane.add(HotRoute("/echo", _echo, ("POST",)))
    lane.add(HotRoute("/refuse", _refuse, ("POST",)))

    async def on_error(request, exc):
        return PlainTextResponse(f"page for {type(exc).__name__}", status_code=418)

    async def inner(scope, receive, send):  # the rest of the app: never for a hot pair
        await PlainTextResponse(f"inner {scope['method']} {scope['path']}")(scope, receive,
                                                                           send)

    app = Starlette()
    app.state.tag = "state-ok"
    app.router.routes.append(lane)
    return TestClient(lane.dispatcher(app, inner, app.router, on_error))


def test_the_dispatcher_answers_hot_pairs_itself_and_passes_on_the_rest() -> None:
    client = _dispatched_app()
    r = client.post("/echo")
    assert r.text == "POST /echo state-ok http://testserver/echo"  # app, router in scope
    assert client.get("/echo").text == "inner GET /echo"  # another method: the app's 405
    assert client.post("/echo/").text == "inner POST /echo/"
    assert client.get("/elsewhere").text == "inner GET /elsewhere"


def test_an_error_in_a_hot_endpoint_gets_the_apps_error_answer() -> None:
    r = _dispatched_app().post("/refuse")
    assert (r.status_code, r.text) == (418, "page for _Refused")
