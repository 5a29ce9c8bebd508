"""Hostile HTTP input (issue 11): schemathesis against the OpenAPI of all four running services.

Each operation of each service is its own test. It is called with generated valid and invalid
input (positive and negative generation), as a KZ01 leader, as a KZ02 officer and without a token
(the generated Authorization header, often garbage, stands). Checks: no 5xx, the answer matches
the documented schema, and no request takes longer than REQUEST_TIMEOUT_S (a hang).

Bounded for `make test`: a few examples per operation, derandomized (the same inputs every run),
no shrinking (the first failing input of each kind is reported as it is). `make fuzz` runs the same
walk with a larger budget (FENGQIAO_FUZZ_EXAMPLES) and prints a summary (tests/hostile/fuzz_summary.py)."""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.failures import Failure, FailureGroup

from tests.hostile.helpers import Route, schema_routes, staff

MAX_EXAMPLES = int(os.environ.get("FENGQIAO_FUZZ_EXAMPLES", "6"))
REQUEST_TIMEOUT_S = float(os.environ.get("FENGQIAO_FUZZ_TIMEOUT_S", "10"))
CHECKS = [not_a_server_error, response_schema_conformance]

# Findings not fixed yet, each on the one operation it breaks. strict: the test fails once the
# operation is fixed, so the mark is removed with the fix. (S1, S2 and S3 of docs/reliability.md are fixed.)
KNOWN: dict[str, str] = {}

# Figures of the run, written by `make fuzz` (FENGQIAO_FUZZ_REPORT=path) for the summary.
STATS: dict[str, dict] = {}


def _param(route: Route):
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN[route.label])] if route.label in KNOWN else []
    return pytest.param(route, id=route.label, marks=marks)


@pytest.fixture(scope="module")
def schemas(stack) -> dict:
    return {name: schemathesis.openapi.from_url(f"{url}/openapi.json") for name, url in stack["urls"].items()}


@pytest.fixture(scope="module")
def raw_schemas(stack) -> dict:
    return {name: requests.get(f"{url}/openapi.json", timeout=10).json() for name, url in stack["urls"].items()}


def _auth_variants(stack) -> dict[str, dict | None]:
    return {"KZ01 leader": staff(stack, "KZ01", "LD"), "KZ02 officer": staff(stack, "KZ02", "P1"), "no token": None}


def _failures_of(exc: BaseException) -> list[Failure]:
    if isinstance(exc, FailureGroup):
        return list(exc.exceptions)
    return [exc] if isinstance(exc, Failure) else []


def fuzz_operation(operation, base_url: str, auths: dict[str, dict | None], max_examples: int) -> tuple[dict, Counter]:
    """Run the checks on generated cases; returns the first failing case per kind of failure
    (without shrinking, which would multiply the requests) and counts of what was sent."""
    found: dict[str, str] = {}
    counts: Counter = Counter()
    session = requests.Session()

    strategy = st.tuples(
        st.sampled_from(sorted(auths)),
        st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)),
    )

    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(strategy)
    def run(drawn):
        who, case = drawn
        headers = auths[who]
        counts["examples"] += 1
        started = time.monotonic()
        try:
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=REQUEST_TIMEOUT_S)
        except requests.Timeout:
            found.setdefault(
                "hang",
                f"no answer within {REQUEST_TIMEOUT_S}s as {who}: "
                f"{case.as_curl_command(headers=headers, base_url=base_url)}",
            )
            return
        counts[f"status {response.status_code}"] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Failure, FailureGroup) as exc:
            for failure in _failures_of(exc):
                key = f"{type(failure).__name__}: {failure.title}"
                if key not in found:
                    found[key] = (
                        f"as {who}, {response.status_code} after {time.monotonic() - started:.2f}s: "
                        f"{case.as_curl_command(headers=headers, base_url=base_url)}\n    {response.text[:300]}"
                    )

    run()
    session.close()
    return found, counts


@pytest.mark.parametrize("route", [_param(r) for r in schema_routes()])
def test_generated_input_finds_no_5xx_no_schema_violation_no_hang(stack, schemas, raw_schemas, route: Route):
    operation = schemas[route.service][route.path][route.method]
    started = time.monotonic()
    found, counts = fuzz_operation(operation, stack["urls"][route.service], _auth_variants(stack), MAX_EXAMPLES)
    STATS[route.label] = {
        "examples": counts["examples"],
        "failures": sorted(found),
        "seconds": round(time.monotonic() - started, 2),
        "statuses": {k: v for k, v in counts.items() if k.startswith("status")},
    }
    report = os.environ.get("FENGQIAO_FUZZ_REPORT")
    if report:
        with open(report, "a") as f:
            f.write(
                json.dumps({"operation": route.label, **STATS[route.label], "detail": found}, ensure_ascii=False) + "\n"
            )
    assert not found, f"{route.label}:\n" + "\n".join(f"- {k}\n    {v}" for k, v in found.items())


@pytest.mark.parametrize("service", ["intake", "mediation", "triage", "notify"])
def test_the_error_answer_is_documented(raw_schemas, service):
    """The 4xx each JSON operation documents is the error the services answer (fengqiao.errors), and
    no operation documents FastAPI's HTTPValidationError, which no service sends (finding S1)."""
    schema = raw_schemas[service]
    assert "HTTPValidationError" not in json.dumps(schema)
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if path.startswith("/api/"):
                error = op["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"]
                assert error == "#/components/schemas/ErrorResponse", f"{method.upper()} {path}"


# -- boundary values, the same every run ---------------------------------------------------------

# Beyond PostgreSQL's bigint, at its edges, and strings a path parameter should never choke on.
HOSTILE_VALUES = [
    str(2**63),
    str(2**63 - 1),
    str(-(2**63) - 1),
    "1" + "0" * 40,
    "-1",
    "0",
    "1e309",
    "NaN",
    "%00",
    "..%2F..%2Fetc%2Fpasswd",
    "%F0%9F%98%80",
    "%ED%B3%BF",
    "%C0%AF",
    "A" * 4000,
]


def _filler(param: dict, station: str) -> str:
    schema = param.get("schema", {})
    if "enum" in schema:
        return str(schema["enum"][0])
    if schema.get("type") == "integer":
        return "1"
    return {"fmt": "json", "station": station, "command": "note", "clock": "accept"}.get(param["name"], station + "-x")


def _boundary_cases(raw_schema: dict, route: Route):
    op = raw_schema["paths"][route.path][route.method.lower()]
    params = op.get("parameters", [])
    path_params = [p for p in params if p["in"] == "path"]
    int_queries = [p for p in params if p["in"] == "query" and p.get("schema", {}).get("type") == "integer"]
    for target in path_params:
        for value in HOSTILE_VALUES:
            path = route.path
            for p in path_params:
                path = path.replace("{" + p["name"] + "}", value if p is target else _filler(p, "KZ01"))
            yield f"{target['name']}={value[:24]}", path, {}
    for target in int_queries:
        for value in HOSTILE_VALUES[:6]:
            path = route.path
            for p in path_params:
                path = path.replace("{" + p["name"] + "}", _filler(p, "KZ01"))
            yield f"?{target['name']}={value[:24]}", path, {target["name"]: value}


# A NUL in a path or query once reached PostgreSQL and answered 500 (finding S3): now refused before routing.
BOUNDARY_KNOWN: dict[str, str] = {}


def _boundary_routes():
    for r in schema_routes():
        marks = [pytest.mark.xfail(strict=True, reason=BOUNDARY_KNOWN[r.label])] if r.label in BOUNDARY_KNOWN else []
        if "{" in r.path or r.method == "GET":
            yield pytest.param(r, id=r.label, marks=marks)


@pytest.mark.parametrize("route", list(_boundary_routes()))
def test_boundary_values_in_path_and_query_are_refused_not_5xx(stack, raw_schemas, route: Route):
    """Ids beyond bigint, NUL, traversal, bad UTF-8 and very long values in every path parameter
    (and the edges of every integer query parameter): 4xx, never 5xx, never a hang."""
    cases = list(_boundary_cases(raw_schemas[route.service], route))
    if not cases:
        pytest.skip("no path or integer query parameter")
    base = stack["urls"][route.service]
    bad = []
    for what, path, query in cases:
        for who, headers in _auth_variants(stack).items():
            try:  # a connection of its own per request: uvicorn closes one after a 500
                r = requests.request(
                    route.method,
                    base + path,
                    params=query,
                    headers=headers or {},
                    json={} if route.method in ("POST", "PUT", "PATCH") else None,
                    timeout=REQUEST_TIMEOUT_S,
                )
            except requests.Timeout:
                bad.append(f"{what} as {who}: no answer within {REQUEST_TIMEOUT_S}s")
                continue
            except requests.ConnectionError as exc:
                bad.append(f"{what} as {who}: the connection dropped ({type(exc.__context__).__name__})")
                continue
            if r.status_code >= 500:
                bad.append(f"{what} as {who}: {r.status_code} {r.text[:120]}")
    assert not bad, f"{route.label}:\n" + "\n".join(bad)
