"""Fixtures and ordering of the hostile-input suites (their helpers are in tests/hostile/helpers.py,
importable by the test modules; the one `stack` of the session is in tests/conftest.py)."""

from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "poisons_stack: may leave the shared stack unusable while its finding is "
        "open; runs after every other test of the session",
    )


def pytest_collection_modifyitems(config, items):
    last = [i for i in items if i.get_closest_marker("poisons_stack")]
    if last:
        items[:] = [i for i in items if i not in last] + last
