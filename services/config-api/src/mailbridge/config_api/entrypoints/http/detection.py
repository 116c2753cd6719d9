"""Settings detection: the IMAP/SMTP settings an address most likely has, for the Email tab."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import EmailStr

from mailbridge.config_api.domain.detection import DetectedSettings
from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.auth import CallerOrSession
from mailbridge.config_api.entrypoints.examples import json_answer
from mailbridge.config_api.entrypoints.http.deps import (
    DetectionsDep,
    DetectionSourcesDep,
    SettingsDep,
    resource_router,
)
from mailbridge.config_api.entrypoints.problems import responses as problems
from mailbridge.config_api.handlers import detection

router = resource_router(prefix="/bridge")

# the example is a preset's domain: a client trying the document's examples asks no DNS
Email = Annotated[
    EmailStr, Query(description="the address, as far as it is typed", examples=["jo@fastmail.com"])
]


@router.get(
    "/email-presets/detect",
    tags=["email-config"],
    summary="Detect the IMAP/SMTP settings of an address",
    responses={
        200: json_answer(
            "What was found, and where; `source` is `none` when nothing was.",
            examples.DETECTED_BY_MX,
            examples.DETECTED_BY_SRV,
            examples.DETECTED_NOTHING,
        ),
        **problems(401, 422),
    },
)
async def detect_email_settings(
    email: Email,
    sources: DetectionSourcesDep,
    detections: DetectionsDep,
    settings: SettingsDep,
    _: CallerOrSession,
) -> DetectedSettings:
    """The settings of the first source that has them: a preset by the address's domain, a
    provider by its MX hosts (Microsoft 365, Google Workspace, Zoho by region, …), the domain's
    autoconfig document, its SRV records (RFC 6186, RFC 8314). `suggest_oauth` names the OAuth
    method to offer first. Answers within a few seconds whatever the domain; findings are kept
    for a few minutes."""
    return await detection.detect_settings(
        email, sources=sources, cache=detections, within=settings.detect_timeout_seconds
    )
