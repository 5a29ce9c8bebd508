"""Type guards for the label strings triage's domain modules produce (typed `str` there) and the
event contracts declare as Literal types. The events validate the same values at run time; these
let the handlers state that invariant to mypy."""

from __future__ import annotations

from typing import TypeGuard, get_args

from fengqiao.events import AlertKind, AlertLevel, Category, RequestType, Role, Urgency

_REQUEST_TYPES = frozenset(get_args(RequestType))
_CATEGORIES = frozenset(get_args(Category))
_URGENCIES = frozenset(get_args(Urgency))
_ROLES = frozenset(get_args(Role))
_ALERT_KINDS = frozenset(get_args(AlertKind))
_ALERT_LEVELS = frozenset(get_args(AlertLevel))


def is_request_type(value: str) -> TypeGuard[RequestType]:
    return value in _REQUEST_TYPES


def is_category(value: str) -> TypeGuard[Category]:
    return value in _CATEGORIES


def is_optional_category(value: str | None) -> TypeGuard[Category | None]:
    return value is None or value in _CATEGORIES


def is_urgency(value: str) -> TypeGuard[Urgency]:
    return value in _URGENCIES


def is_optional_role(value: str | None) -> TypeGuard[Role | None]:
    return value is None or value in _ROLES


def is_alert_kind(value: str) -> TypeGuard[AlertKind]:
    return value in _ALERT_KINDS


def is_alert_level(value: str) -> TypeGuard[AlertLevel]:
    return value in _ALERT_LEVELS
