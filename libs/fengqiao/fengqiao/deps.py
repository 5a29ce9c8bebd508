"""The platform's route dependencies, in one import: typed `Annotated` aliases, so a route reads
like prose (`async def route(rt: RuntimeDep, staff: StaffPrincipal)`) and never touches
`request.app.state` itself.

A service's own aliases (its cipher, its queue, its engine...) live next to its routes in
`<service>/deps.py`, written the same way; only that module knows where app.py keeps them."""

from __future__ import annotations

from fengqiao.http import OptionalPrincipal, RateLimitsDep, StaffPrincipal, rate_limited
from fengqiao.runtime import Runtime, RuntimeDep, get_runtime

__all__ = [
    "OptionalPrincipal",
    "RateLimitsDep",
    "Runtime",
    "RuntimeDep",
    "StaffPrincipal",
    "get_runtime",
    "rate_limited",
]
