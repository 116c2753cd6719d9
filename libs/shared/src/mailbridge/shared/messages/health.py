"""The health request every service answers: any replica replies with its readiness."""

from __future__ import annotations

from pydantic import Field

from mailbridge.shared import subjects
from mailbridge.shared.messages.base import Reply, Request


class CheckHealth(Request):
    """``rpc.health.check.v1.{service}``."""

    subject_template = subjects.RPC_HEALTH
    subject_key = "service"

    service: str


class HealthReply(Reply):
    service: str
    instance: str
    ready: bool
    checks: dict[str, bool] = Field(default_factory=dict)
