"""config-api's health routes: liveness, and readiness with one check per dependency."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.examples import json_answer
from mailbridge.config_api.entrypoints.http.deps import ReadinessDep

router = APIRouter(tags=["health"])


class Readiness(BaseModel):
    """``ready`` and one boolean per dependency (``nats``, ``database``)."""

    model_config = ConfigDict(extra="allow")

    ready: bool
    __pydantic_extra__: dict[str, bool] = Field(init=False)


@router.get(
    "/healthz",
    summary="Liveness",
    responses={200: json_answer("The process answers.", {"status": "ok"})},
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: NATS and PostgreSQL reachable",
    response_model=None,
    responses={
        200: {"model": Readiness, **json_answer("Ready.", examples.READY)},
        503: {"model": Readiness, **json_answer("Not ready.", examples.NOT_READY)},
    },
)
async def readyz(readiness: ReadinessDep) -> JSONResponse:
    checks = await readiness()
    ready = all(checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)
