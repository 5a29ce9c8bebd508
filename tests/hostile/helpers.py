"""Shared pieces of the hostile-input suites (schemathesis, ingress fuzz, tenancy walk).

They run against the session's one `stack` (tests/conftest.py). The routes to walk are read from
the four FastAPI app objects at collection time, so every route gets its own test id: a route
added later is walked (or fails for want of handling) without anyone remembering to list it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from fastapi.routing import APIRoute

from fengqiao.registry import registered_services
from fengqiao.settings import Settings
from tests.e2e.helpers import submit as submit  # re-exported for the hostile suites
from tests.e2e.helpers import token

# The staff of two stations the suites act as (the demo seed, DESIGN 4.6).
STATION_A, STATION_B = "KZ01", "KZ02"


@dataclass(frozen=True)
class Route:
    service: str
    method: str
    path: str
    in_schema: bool

    @property
    def label(self) -> str:
        return f"{self.service} {self.method} {self.path}"


def _apps() -> dict:
    settings = Settings()
    return {d.name: d.create_app(settings) for d in registered_services()}


_ROUTES: list[Route] | None = None


def _flatten(routes):
    """APIRoutes, and the routes of included routers (FastAPI 0.16x includes routers lazily: its
    route contexts carry the effective path, methods and include_in_schema)."""
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "effective_route_contexts"):
            yield from (c for c in r.effective_route_contexts() if c.methods)
        elif hasattr(r, "routes"):
            yield from _flatten(r.routes)


def all_routes() -> list[Route]:
    """Every HTTP route of every service, from the app objects (in the OpenAPI or not)."""
    global _ROUTES
    if _ROUTES is None:
        routes = []
        for service, app in _apps().items():
            for entry in _flatten(app.routes):
                routes += [
                    Route(service, m, entry.path, entry.include_in_schema)
                    for m in sorted(entry.methods)
                    if m not in ("HEAD", "OPTIONS")
                ]
        _ROUTES = routes
    return _ROUTES


def schema_routes() -> list[Route]:
    return [r for r in all_routes() if r.in_schema]


def staff(stack, station: str, suffix: str) -> dict:
    """Authorization header of a demo staff member, e.g. staff(stack, "KZ01", "LD")."""
    return token(stack, f"{station}-{suffix}")


def wait_for_case(stack, tracking_no: str, headers: dict, status: str | None = None, timeout: float = 30) -> dict:
    """Mediation's view of a case once it exists (and has `status`, if given)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = httpx.get(f"{stack['urls']['mediation']}/api/v1/cases/{tracking_no}", headers=headers, timeout=5)
        if last.status_code == 200 and (status is None or last.json()["status"] == status):
            return last.json()
        time.sleep(0.1)
    raise AssertionError(
        f"case {tracking_no} not in mediation{f' as {status}' if status else ''} within {timeout}s: "
        f"{last.status_code if last else None} {last.text[:300] if last else ''}"
    )
