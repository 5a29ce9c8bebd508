"""The sign-in form counts attempts per client address before anything else (issue 15, review):
a script spreading guesses over many user names meets the address's limit."""

from __future__ import annotations

from types import SimpleNamespace

import httpx

from fengqiao.settings import Settings
from mediation.app import create_app


async def test_sign_in_attempts_are_limited_per_address():
    settings = Settings(RATE_LIMIT_LOGIN="3/minute", FENGQIAO_COOKIE_SECURE=False)
    app = create_app(settings)
    # No database is reached: the limit is counted first, then the form's CSRF twin is missing.
    app.state.runtime = SimpleNamespace(pool=None, settings=settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation") as client:
        answers = [
            await client.post("/login", data={"username": f"name-{i}", "password": "x", "csrf_token": "x"})
            for i in range(4)
        ]
    assert [r.status_code for r in answers] == [403, 403, 403, 429]
    assert "过于频繁" in answers[3].text and int(answers[3].headers["retry-after"]) > 0
