"""deploy/kubernetes read as the cluster would: the resources its kustomization lists, each
Deployment's one container and the environment it gets (``env`` and the ConfigMaps of
``envFrom``), and which pods a NetworkPolicy selects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_DIR = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = KUBERNETES_DIR / "kustomization.yaml"
NATS_VALUES = KUBERNETES_DIR / "nats-values.yaml"

# config-api answers /healthz and /readyz on its HTTP port (entrypoints/http/health.py); the
# others on the health port of shared/health.py.
HTTP_HEALTH = {"mailbridge.config_api": ("MAILBRIDGE_HTTP_HOST", "MAILBRIDGE_HTTP_PORT")}
HEALTH_PORT = ("MAILBRIDGE_HEALTH_HOST", "MAILBRIDGE_HEALTH_PORT")

Resource = dict[str, Any]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def kustomization() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(KUSTOMIZATION)
    return document


def resources() -> list[Resource]:
    """Every resource of every file the kustomization lists, in order."""
    found: list[Resource] = []
    for name in kustomization()["resources"]:
        text = (KUBERNETES_DIR / name).read_text(encoding="utf-8")
        found += [doc for doc in yaml.safe_load_all(text) if doc]
    return found


def of_kind(kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in resources() if r["kind"] == kind}


def resource_id(resource: Resource) -> str:
    return f"{resource['kind']}/{resource['metadata']['name']}"


def container(deployment: Resource) -> dict[str, Any]:
    """The Deployment's one container (each service is one process)."""
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{resource_id(deployment)}: one container expected"
    return containers[0]


def module_of(deployment: Resource) -> str:
    """The service module the container runs (``python -m`` is the image's entrypoint)."""
    return str(container(deployment)["args"][0])


def health_variables(deployment: Resource) -> tuple[str, str]:
    """The (host, port) variables of the server that answers the probes."""
    return HTTP_HEALTH.get(module_of(deployment), HEALTH_PORT)


def environment(deployment: Resource) -> dict[str, dict[str, Any]]:
    """Variable -> how it is set: ``{"value": ...}`` or ``{"valueFrom": ...}``; the keys of an
    ``envFrom`` ConfigMap as values. ``env`` wins over ``envFrom``, as in Kubernetes."""
    config_maps = of_kind("ConfigMap")
    found: dict[str, dict[str, Any]] = {}
    for source in container(deployment).get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"only ConfigMaps come by envFrom: {source}"
        data = config_maps[source["configMapRef"]["name"]].get("data", {})
        found |= {name: {"value": value} for name, value in data.items()}
    return found | {item["name"]: item for item in container(deployment).get("env", [])}


def plain_values(deployment: Resource) -> dict[str, str]:
    return {
        name: str(setting["value"])
        for name, setting in environment(deployment).items()
        if "value" in setting
    }


def pod_labels(deployment: Resource) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector of ``matchLabels`` only (the manifests use no expressions)."""
    assert set(selector) <= {"matchLabels"}, f"unexpected selector: {selector}"
    wanted: dict[str, str] = selector.get("matchLabels", {})
    return wanted.items() <= labels.items()


def policies_of(deployment: Resource, policy_type: str) -> Iterator[Resource]:
    """The NetworkPolicies that select the Deployment's pods for ``Ingress`` or ``Egress``."""
    for policy in of_kind("NetworkPolicy").values():
        spec = policy["spec"]
        if policy_type in spec["policyTypes"] and selects(
            spec["podSelector"], pod_labels(deployment)
        ):
            yield policy


def ports(rule: dict[str, Any]) -> set[int]:
    return {port["port"] for port in rule.get("ports", [])}
