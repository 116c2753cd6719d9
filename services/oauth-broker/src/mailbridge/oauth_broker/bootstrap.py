"""The composition root of oauth-broker: its schema, its streams, its subscribers."""

from __future__ import annotations

from pathlib import Path

from mailbridge.shared.runtime import DatabaseService
from mailbridge.shared.streams import OAUTH_EVT

SERVICE = DatabaseService(
    name="oauth-broker",
    schema="oauth_broker",
    migrations=Path(__file__).resolve().parents[3] / "migrations",
    owned_streams=(OAUTH_EVT,),
)
