"""The login path's endpoints, answered before FastAPI's middleware stack and router.

FastAPI 0.165 sends every request through five middleware layers (server errors,
telemetry, body limit, exception handlers, dependency exit stack), then matches it
against every route of every included router in turn (twice: once to choose, once to
handle). On the event loop that is ~100 us per request, a third of the loop's work for
a login request. The few endpoints every login crosses (``/authorize``, ``/token``, the
SAML ACS, the PIN form's POST) take the bare ``Request`` and need none of it: their
exact path and method are one dictionary lookup in ``FastLane.dispatcher``, which calls
the endpoint directly and turns an exception into the same error page or OAuth error as
the app's exception handlers (``ErrorHandler``). Those endpoints cap their own bodies
(``broker.http.forms``).

The lane is also the first entry of the app's route list, so a wrong method on a hot
path still gets Starlette's 405, ``url_for`` finds the endpoints, and the access log and
metrics see the route template as for any route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette._utils import get_route_path  # what Starlette's own routes match on
from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]
_SELECTED = "varco.fastlane.route"


@dataclass(frozen=True)
class HotRoute:
    """An endpoint a component puts on the fast lane: exact path, no path parameters."""

    path: str
    endpoint: Endpoint
    methods: Sequence[str]


class FastLane(BaseRoute):
    """Exact-path Starlette routes by path; a router entry like any other."""

    def __init__(self) -> None:
        self._by_path: dict[str, list[Route]] = {}
        self._exact: dict[tuple[str, str], Route] = {}  # (method, path): the dispatcher's

    def add(self, hot: HotRoute, prefix: str = "") -> None:
        path = prefix + hot.path
        if "{" in path:
            raise ValueError(f"fast lane routes have exact paths: {path}")
        route = Route(path, hot.endpoint, methods=list(hot.methods))
        self._by_path.setdefault(path, []).append(route)
        for method in route.methods or ():
            self._exact.setdefault((method, path), route)

    @property
    def paths(self) -> list[str]:
        return sorted(self._by_path)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        routes = self._by_path.get(get_route_path(scope))
        if routes is None:
            return Match.NONE, {}
        partial: tuple[Route, Scope] | None = None
        for route in routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return match, {**child, "route": route, _SELECTED: route}
            if match is Match.PARTIAL and partial is None:  # the path, another method: 405
                partial = (route, child)
        if partial is None:
            return Match.NONE, {}
        return Match.PARTIAL, {**partial[1], "route": partial[0], _SELECTED: partial[0]}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """``request.url_for`` walks every route: answer for ours, pass on the rest."""
        for routes in self._by_path.values():
            for route in routes:
                try:
                    return route.url_path_for(name, **path_params)
                except NoMatchFound:
                    continue
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope[_SELECTED].handle(scope, receive, send)

    def dispatcher(self, app: ASGIApp, inner: ASGIApp, router: Router,
                   on_error: ErrorHandler) -> ASGIApp:
        """An ASGI app answering the lane's exact (method, path) pairs itself, passing
        everything else to ``inner`` (the app's middleware stack).

        ``app`` and ``router`` go into the scope as Starlette would put them
        (``request.app.state``, ``url_for``); ``scope["route"]`` is set for the metrics.
        An exception from the endpoint becomes ``on_error``'s response, as the app's
        exception handlers would answer it.
        """
        exact = self._exact

        async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
            route = None
            if scope["type"] == "http" and not scope.get("root_path"):
                route = exact.get((scope["method"], scope["path"]))
            if route is None:
                await inner(scope, receive, send)
                return
            scope["app"] = app
            scope["router"] = router
            scope["route"] = route
            request = Request(scope, receive, send)
            response: Response
            try:
                response = await route.endpoint(request)
            except Exception as exc:
                response = await on_error(request, exc)
            await response(scope, receive, send)

        return dispatch
