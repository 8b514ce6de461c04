"""The login path's endpoints, found by one dictionary lookup before any other route.

FastAPI 0.165 matches a request against every route of every included router in turn
(twice: once to choose, once to handle) and then resolves the endpoint's dependencies.
The few endpoints every login crosses (``/authorize``, ``/token``, the SAML ACS) take the
bare ``Request`` and need none of that, so they are plain Starlette routes kept in a
``FastLane``, the first entry of the app's route list: an exact path is one dict lookup.
Everything else (error pages, 405 for a wrong method, the access log and metrics by route
template) works as for any route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route, get_route_path
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
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

    def add(self, hot: HotRoute, prefix: str = "") -> None:
        path = prefix + hot.path
        if "{" in path:
            raise ValueError(f"fast lane routes have exact paths: {path}")
        self._by_path.setdefault(path, []).append(
            Route(path, hot.endpoint, methods=list(hot.methods)))

    @property
    def paths(self) -> list[str]:
        return sorted(self._by_path)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        routes = self._by_path.get(get_route_path(scope))
        if routes is None:
            return Match.NONE, {}
        partial: tuple[Route, dict[str, Any]] | None = None
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
