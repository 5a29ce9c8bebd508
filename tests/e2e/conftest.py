"""Browser fixtures of the end-to-end tests (the `stack` of four service processes is in tests/conftest.py,
shared with tests/hostile)."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven by Playwright; a missing browser fails under CI=true. Module-scoped:
    Playwright's sync API holds an event loop on this thread until it is closed, which would break
    the asyncio-based tests that follow."""
    executable = shutil.which("chromium")
    if executable is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (make test installs it as root: scripts/system-deps.sh)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})  # a phone
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def desk(browser):
    """A station PC's browser window (the console's usual screen); `page` is a phone."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()
