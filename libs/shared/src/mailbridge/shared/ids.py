"""Identifiers: random, URL- and subject-safe strings."""

from __future__ import annotations

import uuid


def new_id(prefix: str = "") -> str:
    """A new random id, optionally prefixed (``cmd_3f2a...``)."""
    return f"{prefix}_{uuid.uuid4().hex}" if prefix else uuid.uuid4().hex
