"""The composition root of policy: its schema, its streams, its subscribers."""

from __future__ import annotations

from pathlib import Path

from mailbridge.shared.runtime import DatabaseService
from mailbridge.shared.streams import POLICY_EVT

SERVICE = DatabaseService(
    name="policy",
    schema="policy",
    migrations=Path(__file__).resolve().parents[3] / "migrations",
    owned_streams=(POLICY_EVT,),
)
