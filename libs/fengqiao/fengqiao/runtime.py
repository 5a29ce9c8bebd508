"""A service's runtime: pool, producer, outbox relay, consumer runner and the FastAPI app with
/healthz, /readyz and /metrics. Each service's app.py (its composition root) describes itself
with a `ServiceSpec` and calls `build_app`. Just over 400 lines: the whole life of a service
process (start, stop, readiness, the app and its error answers) in one place."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from fengqiao.db import create_pool, migrate
from fengqiao.errors import document_errors, invalid_field
from fengqiao.events import bind_handlers
from fengqiao.kafka import ConsumerRunner, RunnerConfig
from fengqiao.logging import configure_logging
from fengqiao.metrics import Metrics
from fengqiao.middleware import (
    ASGIApp,
    BodyLimit,
    Message,
    Receive,
    RefuseNul,
    RequestDeadline,
    Scope,
    SecurityHeaders,
    Send,
)
from fengqiao.outbox import Handler, OutboxRelay
from fengqiao.producer import ProducerHandle
from fengqiao.settings import Settings

log = structlog.get_logger(__name__)


@dataclass
class ServiceSpec:
    name: str
    migrations_dir: Path
    topics: list[str]
    # Builds the HANDLERS table (event type -> handler) with the process's metrics bound; each handler is
    # bound to the topic its event type travels on (`fengqiao.events.TOPIC_TYPES`).
    handlers: Callable[[Metrics], dict[str, Handler]]
    routers: list[APIRouter] = field(default_factory=list)
    # Long-running tasks of the service beyond relay and consumer (timers, receivers...).
    background: list[Callable[[Runtime], Coroutine[Any, Any, None]]] = field(default_factory=list)
    title: str = ""
    # Domain errors raised by routes -> the HTTP error each becomes (answered and counted like
    # any other 4xx), so routes need no try/except around the domain call.
    http_errors: dict[type[Exception], Callable[[Exception], StarletteHTTPException]] = field(default_factory=dict)
    # Routes (exact paths) that take bodies larger than Settings.max_request_bytes, and their limit; and
    # routes whose uploads may take longer than Settings.request_timeout_s, and their deadline.
    body_limits: dict[str, int] = field(default_factory=dict)
    slow_routes: dict[str, float] = field(default_factory=dict)


@dataclass
class Runtime:
    spec: ServiceSpec
    settings: Settings
    metrics: Metrics
    pool: asyncpg.Pool
    producer: ProducerHandle
    relay: OutboxRelay
    runner: ConsumerRunner | None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)  # relay and consumer: stopped gracefully
    background: list[asyncio.Task[None]] = field(default_factory=list)  # timers etc.: cancelled

    @property
    def source(self) -> str:
        return f"/fengqiao/{self.spec.name}"


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI would run a plain def dependency in a worker thread, a costly hop per request
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def start_runtime(spec: ServiceSpec, settings: Settings, metrics: Metrics) -> Runtime:
    dsn, bootstrap = settings.require_infrastructure()
    await migrate(dsn, spec.name, spec.migrations_dir)
    pool = await create_pool(
        dsn,
        spec.name,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        application_name=f"fengqiao-{spec.name}",
    )
    producer = ProducerHandle(bootstrap, client_id=f"fengqiao-{spec.name}")
    relay = OutboxRelay(
        pool=pool,
        dsn=dsn,
        schema=spec.name,
        producer=producer,
        metrics=metrics,
        batch_size=settings.outbox_batch_size,
        poll_interval_s=settings.outbox_poll_interval_s,
        retention_hours=settings.outbox_retention_hours,
        inbox_retention_days=settings.inbox_retention_days,
    )
    runner = _consumer_runner(spec, settings, metrics, pool, bootstrap, producer) if spec.topics else None
    rt = Runtime(
        spec=spec, settings=settings, metrics=metrics, pool=pool, producer=producer, relay=relay, runner=runner
    )
    _start_tasks(rt)
    return rt


def _consumer_runner(
    spec: ServiceSpec,
    settings: Settings,
    metrics: Metrics,
    pool: asyncpg.Pool,
    bootstrap: str,
    producer: ProducerHandle,
) -> ConsumerRunner:
    return ConsumerRunner(
        pool=pool,
        bootstrap=bootstrap,
        producer=producer,
        metrics=metrics,
        client_id=f"fengqiao-{spec.name}",
        config=RunnerConfig(
            group_id=f"fengqiao-{spec.name}",
            topics=spec.topics,
            handlers=bind_handlers(spec.topics, spec.handlers(metrics)),
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            max_poll_records=settings.kafka_max_poll_records,
            max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
            handler_timeout_s=settings.handler_timeout_s,
            retry_attempts=settings.handler_retry_attempts,
            dead_letter_after=settings.handler_error_dead_letter_after,
        ),
    )


def _start_tasks(rt: Runtime) -> None:
    """The relay and the consumer (stopped gracefully), then the service's background jobs (cancelled)."""
    spec = rt.spec
    rt.tasks.append(asyncio.create_task(rt.relay.run(), name=f"{spec.name}-outbox-relay"))
    if rt.runner is not None:
        rt.tasks.append(asyncio.create_task(rt.runner.run(), name=f"{spec.name}-consumer"))
    for job in spec.background:
        rt.background.append(asyncio.create_task(job(rt), name=f"{spec.name}-{job.__name__}"))
    for task in rt.tasks + rt.background:
        task.add_done_callback(_report_task_end)


def _report_task_end(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background_task_died", task=task.get_name(), error=type(exc).__name__, detail=str(exc)[:300])


async def stop_runtime(rt: Runtime) -> None:
    """Graceful: stop fetching, let the batch in hand commit, flush the relay, close."""
    if rt.runner is not None:
        rt.runner.stop()
    rt.relay.stop()
    for task in rt.background:
        task.cancel()
    await asyncio.gather(*rt.background, return_exceptions=True)
    _done, pending = await asyncio.wait(rt.tasks, timeout=rt.settings.handler_timeout_s + 5)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await rt.producer.stop()
    await rt.pool.close()


async def readiness(rt: Runtime) -> tuple[bool, dict[str, str]]:
    checks: dict[str, str] = {}
    try:
        async with rt.pool.acquire(timeout=1.0) as conn:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), 1.0)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks["broker"] = "ok" if await rt.producer.reachable(timeout=1.5) else "unreachable"
    if rt.runner is not None:
        checks["consumer"] = "ok" if rt.runner.healthy else f"not running ({rt.runner.last_error or 'starting'})"
    checks["outbox_relay"] = "ok" if rt.relay.running else "stopped"
    for task in rt.tasks:  # relay and consumer must run for the life of the process
        if task.done():
            checks[task.get_name()] = "died"
    for task in rt.background:  # other jobs may finish; failing is what counts
        if task.done() and not task.cancelled() and task.exception() is not None:
            checks[task.get_name()] = "died"
    return all(v == "ok" for v in checks.values()), checks


class RequestLatency:
    """Pure ASGI middleware: request latency by route template (never the raw path, which would
    put tracking numbers into label values). Cheaper than BaseHTTPMiddleware."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            self.metrics.http_request_seconds.labels(
                scope["method"],
                getattr(route, "path", "unmatched"),
                str(status),
            ).observe(time.perf_counter() - started)


_FRAMEWORK_ERRORS = {
    400: ("invalid_body", "请求体无法解析。"),
    401: ("unauthorized", "需要登录或令牌。"),
    403: ("forbidden", "无权进行此操作。"),
    404: ("not_found", "未找到。"),
    405: ("method_not_allowed", "不支持该请求方法。"),
    413: ("body_too_large", "请求体过大。"),
    415: ("unsupported_media_type", "不支持该内容类型。"),
}


def framework_error(exc: StarletteHTTPException) -> dict[str, str]:
    code, message = _FRAMEWORK_ERRORS.get(exc.status_code, (f"http_{exc.status_code}", str(exc.detail)))
    return {"error": code, "message": message}


def build_app(spec: ServiceSpec, settings: Settings | None = None) -> FastAPI:
    """The service's FastAPI app: its routers behind the platform's error shapes, middleware and
    /healthz, /readyz, /metrics; the runtime starts and stops with the app's lifespan."""
    settings = settings or Settings()
    configure_logging(spec.name, settings.log_level, settings.log_format)
    metrics = Metrics(spec.name)
    app = FastAPI(title=spec.title or f"Fengqiao {spec.name}", lifespan=_lifespan(spec, settings, metrics))
    app.state.metrics = metrics
    _answer_unavailable_database(app)
    _answer_errors_in_one_shape(app, spec, metrics)
    _add_middleware(app, spec, settings, metrics)
    _add_platform_routes(app, spec, metrics)
    for router in spec.routers:
        app.include_router(router)
    _document_errors_in_openapi(app)
    return app


def _lifespan(
    spec: ServiceSpec, settings: Settings, metrics: Metrics
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = await start_runtime(spec, settings, metrics)
        app.state.runtime = rt
        log.info("service_started", service=spec.name)
        try:
            yield
        finally:
            await stop_runtime(rt)
            log.info("service_stopped", service=spec.name)

    return lifespan


def _route_path(scope: Mapping[str, Any]) -> str:
    return getattr(scope.get("route"), "path", "unmatched")


def _answer_unavailable_database(app: FastAPI) -> None:
    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.InterfaceError)
    @app.exception_handler(asyncpg.CannotConnectNowError)
    @app.exception_handler(asyncpg.TooManyConnectionsError)
    @app.exception_handler(OSError)
    @app.exception_handler(asyncio.TimeoutError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        """The database is unreachable: say so at once; nothing was stored, the client may retry."""
        log.warning("request_failed_unavailable", route=_route_path(request.scope), error=type(exc).__name__)
        return JSONResponse(
            status_code=503,
            headers={"Retry-After": "5"},
            content={
                "detail": {"error": "unavailable", "message": "系统暂时无法处理，请稍后重试。您的请求没有被保存。"}
            },
        )


def _answer_errors_in_one_shape(app: FastAPI, spec: ServiceSpec, metrics: Metrics) -> None:
    """Every 4xx as {"error", "message"[, "field"]}, counted by route and code; the service's domain
    errors mapped to theirs (`ServiceSpec.http_errors`)."""

    def count_rejection(request: Request, code: str) -> None:
        metrics.rejections.labels(_route_path(request.scope), code).inc()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if 400 <= exc.status_code < 500:
            # Starlette types `detail` as a str; FastAPI's HTTPException (`api_error`) carries a dict
            detail: object = exc.detail
            if not isinstance(detail, dict):  # FastAPI's and Starlette's own (a body that does not
                # parse, an unknown path, a wrong method): the same shape as every other error
                detail = framework_error(exc)
                exc = HTTPException(exc.status_code, headers=exc.headers, detail=detail)
            count_rejection(request, str(detail.get("error", exc.status_code)))
        return await http_exception_handler(request, exc)

    for error_type, to_http in spec.http_errors.items():

        async def domain_error(
            request: Request, exc: Exception, to_http: Callable[[Exception], StarletteHTTPException] = to_http
        ) -> Response:
            return await http_error(request, to_http(exc))

        app.add_exception_handler(error_type, domain_error)

    @app.exception_handler(asyncpg.CharacterNotInRepertoireError)
    @app.exception_handler(asyncpg.UntranslatableCharacterError)
    async def invalid_characters(request: Request, exc: Exception) -> JSONResponse:
        """Text PostgreSQL cannot store (a NUL in a JSON string or a form field): the client's input, not
        our fault; the transaction was rolled back."""
        count_rejection(request, "invalid_characters")
        return JSONResponse(
            status_code=422,
            content={"detail": {"error": "invalid_characters", "message": "输入中含有不允许的字符（如 NUL）。"}},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """The same JSON error shape as every other error: a code, a message, the field at fault."""
        count_rejection(request, "invalid_field")
        error = invalid_field(exc.errors(), exc.body)
        return JSONResponse(status_code=error.status_code, content={"detail": error.detail})


def _add_middleware(app: FastAPI, spec: ServiceSpec, settings: Settings, metrics: Metrics) -> None:
    # Outermost last: security headers on every answer (413 and 503 included), latency of every answer.
    app.add_middleware(
        RequestDeadline,
        seconds=settings.request_timeout_s,
        overrides=spec.slow_routes,
        on_timeout=lambda scope: metrics.rejections.labels(_route_path(scope), "deadline_exceeded").inc(),
    )
    app.add_middleware(RefuseNul)
    app.add_middleware(BodyLimit, default=settings.max_request_bytes, overrides=spec.body_limits)
    app.add_middleware(RequestLatency, metrics=metrics)
    app.add_middleware(SecurityHeaders)


def _add_platform_routes(app: FastAPI, spec: ServiceSpec, metrics: Metrics) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(rt: RuntimeDep) -> JSONResponse:
        ok, checks = await readiness(rt)
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)


def _document_errors_in_openapi(app: FastAPI) -> None:
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
