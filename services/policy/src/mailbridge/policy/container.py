"""What policy's entrypoints may use: ports, nothing concrete (built in bootstrap.py)."""

from __future__ import annotations

from dataclasses import dataclass

from mailbridge.policy.entrypoints.metrics import PolicyMetrics
from mailbridge.policy.ports import ClientOrgs, Contacts, OrgApps, SendHolds, SendQuota
from mailbridge.shared.crypto import Sealer


@dataclass(frozen=True)
class Container:
    apps: OrgApps
    client_orgs: ClientOrgs
    quota: SendQuota
    holds: SendHolds
    contacts: Contacts
    sealer: Sealer
    metrics: PolicyMetrics
