"""Intake's route dependencies as typed aliases (as the FastAPI template's deps.py): a route names
what it needs; only this module knows that app.py keeps them on app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from fengqiao.pii import BlindIndex, PiiCipher


# async: FastAPI would run a plain def dependency in a worker thread, a costly hop per request
async def get_cipher(request: Request) -> PiiCipher:
    return request.app.state.pii


async def get_index(request: Request) -> BlindIndex:
    return request.app.state.pii_index


async def get_link_key(request: Request) -> bytes:
    return request.app.state.link_key


CipherDep = Annotated[PiiCipher, Depends(get_cipher)]
IndexDep = Annotated[BlindIndex, Depends(get_index)]
LinkKeyDep = Annotated[bytes, Depends(get_link_key)]
