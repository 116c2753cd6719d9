"""deploy/kubernetes/network-policies.yaml: the namespace denies by default, only config-api
takes traffic (the monitoring namespace may scrape the health ports), and each service may dial
exactly what it needs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.kubernetes_manifests import (
    Resource,
    health_variables,
    of_kind,
    plain_values,
    policies_of,
    ports,
)

pytestmark = pytest.mark.contract

DEPLOYMENTS = of_kind("Deployment")
MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}

# What each service dials besides DNS: NATS everywhere; PostgreSQL for the services that own
# tables; HTTPS for autoconfig documents (config-api), the identity providers (oauth-broker),
# Gmail and Graph (mail-worker); the mail servers' IMAP and SMTP ports (mail-worker).
EGRESS = {
    "config-api": {53, 4222, 5432, 443},
    "oauth-broker": {53, 4222, 5432, 443},
    "policy": {53, 4222, 5432},
    "mail-worker": {53, 4222, 443, 993, 143, 465, 587, 25},
}


def test_only_config_api_takes_ingress_beyond_monitoring() -> None:
    deny = of_kind("NetworkPolicy")["default-deny"]["spec"]
    health_ports = {_health_port(d) for d in DEPLOYMENTS.values()}
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}

    for name, deployment in DEPLOYMENTS.items():
        rules = [
            rule
            for p in policies_of(deployment, "Ingress")
            for rule in p["spec"].get("ingress", [])
        ]
        opened = set().union(*(ports(rule) for rule in rules if not _from_monitoring(rule)))
        monitored = set().union(*(ports(rule) for rule in rules if _from_monitoring(rule)))

        expected = {_health_port(deployment)} if name == "config-api" else set()
        assert opened == expected, f"{name} takes ingress on {opened}"
        assert monitored <= health_ports, f"{name}: monitoring reaches {monitored}"


def _from_monitoring(rule: dict[str, Any]) -> bool:
    return rule.get("from") == [MONITORING]


def _health_port(deployment: Resource) -> int:
    return int(plain_values(deployment)[health_variables(deployment)[1]])


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_each_service_reaches_exactly_what_it_dials(name: str) -> None:
    rules = [
        rule
        for p in policies_of(DEPLOYMENTS[name], "Egress")
        for rule in p["spec"].get("egress", [])
    ]
    assert all(rule.get("ports") for rule in rules), f"{name}: an egress rule open on every port"
    assert set().union(*(ports(rule) for rule in rules)) == EGRESS[name]
