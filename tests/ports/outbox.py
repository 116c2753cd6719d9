"""What a port that writes its messages with its changes is checked against: the outbox entries."""

from __future__ import annotations

import json
from typing import Any

from mailbridge.shared.messages import Message

Written = tuple[str, dict[str, Any]]
"""One outbox entry as the relay will publish it: the subject and the JSON payload."""


def as_written(message: Message) -> Written:
    """What the outbox keeps of a message (``write_outbox``): its subject and its JSON."""
    return message.nats_subject(), json.loads(message.model_dump_json(by_alias=True))
