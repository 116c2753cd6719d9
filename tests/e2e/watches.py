"""Who watches a mailbox, as the watch leases in NATS KV say (``adapters/watch_leases.py``)."""

from __future__ import annotations

import json

from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError

from mailbridge.devstack.system import RunningSystem
from mailbridge.mail_worker.adapters.kv import kv_key
from mailbridge.mail_worker.adapters.watch_leases import MAILBOXES
from tests.e2e.mailboxes import Agent
from tests.support.waiting import eventually


async def watcher_of(bus: Client, agent: Agent, besides: str = "") -> str:
    """The id of the worker that holds the agent's watch (other than ``besides``), once one does."""

    async def owner() -> str | None:
        found = await watch_entry(bus, agent)
        return found["owner"] if found and found["owner"] not in ("", besides) else None

    return await eventually(owner, what=f"a worker watching {agent.agent_id}", every=0.05)


async def watch_entry(bus: Client, agent: Agent) -> dict[str, str] | None:
    bucket = await bus.jetstream().key_value(MAILBOXES)
    try:
        entry = await bucket.get(kv_key(agent.agent_id))
    except KeyNotFoundError:
        return None
    return json.loads(entry.value) if entry.value else None


def replica_named_by(stack: RunningSystem, worker_id: str) -> str:
    """A worker id is ``{host}-{pid}-{random}``: the replica with that pid."""
    pid = int(worker_id.rsplit("-", 2)[1])
    return next(name for name, running in stack.supervisor.pids().items() if running == pid)
