"""What oauth-broker's entrypoints may use: ports, nothing concrete (built in bootstrap.py).

The service owns its schema and stream and answers health checks; its flows, token storage and
refresh come with the OAuth work, which adds their ports here.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbridge.shared.bus import Publisher
from mailbridge.shared.crypto import Sealer


@dataclass(frozen=True)
class Container:
    events: Publisher
    sealer: Sealer
