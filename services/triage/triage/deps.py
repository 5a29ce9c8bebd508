"""Triage's route dependencies as typed aliases (as the FastAPI template's deps.py): a route names
what it needs; only this module knows that app.py keeps them on app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from triage.state import EngineState


# async: FastAPI would run a plain def dependency in a worker thread, a costly hop per request
async def get_engine(request: Request) -> EngineState:
    return request.app.state.engine


EngineDep = Annotated[EngineState, Depends(get_engine)]
