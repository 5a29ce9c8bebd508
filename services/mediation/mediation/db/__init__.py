"""Mediation's SQL, one typed function per statement, and nowhere else in the service.

A package rather than one db.py: the service has four areas of tables (cases and their history,
clocks, mediation records, the rectification ledger), together over 400 lines."""

from mediation.db import (
    access,
    accounts,
    additions,
    cases,
    clocks,
    detail,
    directory,
    records,
    rectification,
    replies,
    resolutions,
    rosters,
    search,
)

__all__ = [
    "access",
    "accounts",
    "additions",
    "cases",
    "clocks",
    "detail",
    "directory",
    "records",
    "rectification",
    "replies",
    "resolutions",
    "rosters",
    "search",
]
