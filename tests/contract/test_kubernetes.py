"""deploy/kubernetes agrees with the Kubernetes API and with the services: every manifest is valid
for the API versions we support, each Deployment runs a service of the one image with only the
settings it reads, secrets by reference, probes on the port that serves health, the hardening and
resources every pod gets, and the network, disruption and scaling resources point at them.

The Kubernetes schemas are kubernetes-validate's bundled ones (offline). KEDA's ScaledObject is a
custom resource those lack: it is checked against ``keda-scaledobject.json``, a schema of the fields
used here, written from KEDA's documentation (its ``$comment`` names the pages)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import kubernetes_validate
import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic_settings import BaseSettings

from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.health import HealthServer
from mailbridge.shared.runtime import build_broker
from mailbridge.shared.settings import ServiceSettings
from mailbridge.shared.streams import MAIL_CMD
from tests.contract import service_settings
from tests.contract.kubernetes_manifests import (
    HTTP_HEALTH,
    KUBERNETES_DIR,
    NATS_VALUES,
    ROOT,
    Resource,
    container,
    environment,
    health_variables,
    kustomization,
    load_yaml,
    module_of,
    of_kind,
    plain_values,
    pod_labels,
    resource_id,
    resources,
    selects,
)
from tests.contract.service_settings import SETTINGS_BY_MODULE

pytestmark = pytest.mark.contract

# The oldest Kubernetes the README promises, and the newest whose schemas are bundled.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
KEDA_SCHEMA = Path(__file__).with_name("keda-scaledobject.json")
IMAGE = "mailbridge"  # the kustomization's images entry points it at a registry
SECRET_WORDS = ("KEY", "SECRET", "PASSWORD", "DATABASE_URL")
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
# Keys of the NATS chart's values.yaml (nats-io/k8s helm/charts/nats, chart 2.14.2, commit
# 957650fba03e2e6ad8b5d54d66358f67a431157b) that nats-values.yaml may set: look a new one up there.
NATS_CHART_KEYS = {
    "config.cluster.enabled", "config.cluster.replicas",
    "config.jetstream.enabled", "config.jetstream.fileStore.enabled",
    "config.jetstream.fileStore.pvc.enabled", "config.jetstream.fileStore.pvc.size",
    "config.monitor.enabled", "config.monitor.port",
    "podDisruptionBudget.enabled", "natsBox.enabled",
}  # fmt: skip

DEPLOYMENTS = of_kind("Deployment")
NAMES = sorted(DEPLOYMENTS)


def _settings(deployment: Resource) -> type[BaseSettings]:
    return SETTINGS_BY_MODULE[module_of(deployment)]


def _port_number(deployment: Resource, port: int | str) -> int:
    """A probe's port, by number or by the container port's name."""
    named = {p["name"]: p["containerPort"] for p in container(deployment).get("ports", [])}
    return int(named.get(str(port), port))


def test_the_kustomization_lists_every_manifest() -> None:
    helm_values = {NATS_VALUES.name, "kustomization.yaml"}
    manifests = {p.name for p in KUBERNETES_DIR.glob("*.yaml")} - helm_values

    assert set(kustomization()["resources"]) == manifests
    assert [image["name"] for image in kustomization()["images"]] == [IMAGE]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    "resource",
    [r for r in resources() if not r["apiVersion"].startswith("keda.sh/")],
    ids=resource_id,
)
def test_every_manifest_validates_against_the_kubernetes_schemas(
    resource: Resource, version: str
) -> None:
    # strict: a field the API does not know (a typo, a wrong level) is an error too
    kubernetes_validate.validate(resource, version, strict=True)


@pytest.mark.parametrize("scaled", of_kind("ScaledObject").values(), ids=resource_id)
def test_the_scaled_object_has_only_the_fields_keda_reads(scaled: Resource) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(KEDA_SCHEMA.read_text()))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(scaled)]
    assert not errors, errors


def test_every_service_runs_from_the_one_image() -> None:
    for name, deployment in DEPLOYMENTS.items():
        assert "command" not in container(deployment), f"{name} replaces the image's python -m"
        assert container(deployment)["image"] == IMAGE, name
    assert {module_of(d) for d in DEPLOYMENTS.values()} == set(SETTINGS_BY_MODULE)


@pytest.mark.parametrize("name", NAMES)
def test_every_mailbridge_variable_is_read_by_the_service(name: str) -> None:
    variables, settings = environment(DEPLOYMENTS[name]), _settings(DEPLOYMENTS[name])
    unread = service_settings.unread_variables(variables, settings)
    misspelt = service_settings.misspelt_variables(variables, settings)

    assert not unread, f"{name} sets variables its settings never read: {unread}"
    assert not misspelt, f"{name} sets misspelt variables: {misspelt}"


@pytest.mark.parametrize("name", NAMES)
def test_every_required_setting_is_set(name: str) -> None:
    variables = environment(DEPLOYMENTS[name])
    required = service_settings.required_variables(_settings(DEPLOYMENTS[name]))
    missing = [var for var in required if var not in variables]

    assert not missing, f"{name} starts without required settings: {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_secrets_come_from_secrets_never_from_the_manifest(name: str) -> None:
    variables = environment(DEPLOYMENTS[name])
    looks_secret = [
        var for var in plain_values(DEPLOYMENTS[name]) if any(w in var for w in SECRET_WORDS)
    ]
    not_referenced = [
        var
        for var in service_settings.secret_variables(_settings(DEPLOYMENTS[name]))
        if var in variables and "secretKeyRef" not in variables[var].get("valueFrom", {})
    ]

    assert not looks_secret, f"{name} writes secret values into the manifest: {looks_secret}"
    assert not not_referenced, f"{name} takes secret settings from no Secret: {not_referenced}"


def test_every_secret_referenced_is_documented() -> None:
    readme = (KUBERNETES_DIR / "README.md").read_text(encoding="utf-8")
    references = {
        (ref["name"], ref["key"])
        for deployment in DEPLOYMENTS.values()
        for setting in environment(deployment).values()
        if (ref := setting.get("valueFrom", {}).get("secretKeyRef"))
    }
    undocumented = [ref for ref in references if not all(f"`{part}`" in readme for part in ref)]

    assert references and not undocumented, f"Secrets not in the README: {undocumented}"


@pytest.mark.parametrize("name", NAMES)
def test_probes_ask_the_port_that_serves_health(name: str) -> None:
    deployment = DEPLOYMENTS[name]
    host_variable, port_variable = health_variables(deployment)
    values = plain_values(deployment)
    probes = {kind: container(deployment).get(kind, {}) for kind in PROBES}

    assert values.get(host_variable) == "0.0.0.0", f"{name}: the kubelet cannot reach loopback"
    for kind, probe in probes.items():
        assert probe, f"{name} has no {kind}"
        port = _port_number(deployment, probe["httpGet"]["port"])
        assert str(port) == values.get(port_variable), f"{name} {kind}: port {port}"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"


async def test_the_probed_paths_are_served() -> None:
    probed = {
        (module_of(d), container(d)[kind]["httpGet"]["path"])
        for d in DEPLOYMENTS.values()
        for kind in PROBES
    }
    api_paths = set(json.loads((ROOT / "contract" / "openapi.json").read_text())["paths"])
    health = HealthServer("127.0.0.1", 0, _always_ready)
    await health.start()
    try:
        unserved = [(m, p) for m, p in probed if not await _serves(m, p, api_paths, health.port)]
    finally:
        await health.stop()

    assert not unserved, f"probes on paths nothing answers: {unserved}"


async def _serves(module: str, path: str, api_paths: set[str], health_port: int) -> bool:
    if module in HTTP_HEALTH:
        return path in api_paths  # config-api's routes (contract/openapi.json, checked elsewhere)
    async with httpx.AsyncClient() as client:
        return (await client.get(f"http://127.0.0.1:{health_port}{path}")).status_code == 200


async def _always_ready() -> dict[str, bool]:
    return {"nats": True}


@pytest.mark.parametrize("name", NAMES)
def test_every_pod_is_hardened(name: str) -> None:
    pod = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    hardening = container(DEPLOYMENTS[name]).get("securityContext", {})
    user = re.search(r"^USER (\d+)", (ROOT / "deploy" / "Dockerfile").read_text(), re.M)
    mounts = {
        m["mountPath"]: m["name"] for m in container(DEPLOYMENTS[name]).get("volumeMounts", [])
    }
    empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert user and pod["securityContext"].get("runAsUser") == int(user[1]), "the image's user"
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert hardening.get("allowPrivilegeEscalation") is False
    assert hardening.get("readOnlyRootFilesystem") is True
    assert hardening.get("capabilities") == {"drop": ["ALL"]}
    assert mounts.get("/tmp") in empty_dirs, f"{name}: /tmp is not a writable emptyDir"


@pytest.mark.parametrize("name", NAMES)
def test_every_container_requests_resources_and_caps_memory(name: str) -> None:
    resources_ = container(DEPLOYMENTS[name]).get("resources", {})
    assert {"cpu", "memory"} <= set(resources_.get("requests", {})), name
    assert "memory" in resources_.get("limits", {}), name


@pytest.mark.parametrize("name", NAMES)
def test_the_grace_period_outlasts_the_drain(name: str) -> None:
    drain = build_broker(ServiceSettings(), TracerProvider()).config.graceful_timeout or 0.0
    pre_stop = container(DEPLOYMENTS[name]).get("lifecycle", {}).get("preStop", {})
    sleep = float(pre_stop["exec"]["command"][1]) if pre_stop else 0.0
    grace = DEPLOYMENTS[name]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]

    assert grace > sleep + drain, f"{name}: killed before its subscribers drained ({drain} s)"


def test_every_deployment_has_one_disruption_budget() -> None:
    budgets = of_kind("PodDisruptionBudget").values()
    covered = {
        name: [b for b in budgets if selects(b["spec"]["selector"], pod_labels(d))]
        for name, d in DEPLOYMENTS.items()
    }
    assert all(len(found) == 1 for found in covered.values()), covered
    assert len(budgets) == len(DEPLOYMENTS), "a budget that covers no Deployment"


def test_the_autoscalers_scale_existing_deployments_that_set_no_replicas() -> None:
    targets = [h["spec"]["scaleTargetRef"] for h in of_kind("HorizontalPodAutoscaler").values()]
    targets += [
        {"kind": "Deployment", **s["spec"]["scaleTargetRef"]}
        for s in of_kind("ScaledObject").values()
    ]
    scaled = {t["name"] for t in targets if t["kind"] == "Deployment"}

    assert len(scaled) == len(targets), f"a target that is no Deployment: {targets}"
    assert scaled <= set(DEPLOYMENTS), f"no such Deployment: {scaled - set(DEPLOYMENTS)}"
    assert {"config-api", "mail-worker"} <= scaled
    assert all("replicas" not in DEPLOYMENTS[name]["spec"] for name in scaled), "apply resets it"


def test_the_mail_worker_scales_on_the_consumer_it_reads() -> None:
    (scaled,) = of_kind("ScaledObject").values()
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    worker = DEPLOYMENTS[scaled["spec"]["scaleTargetRef"]["name"]]
    durable = plain_values(worker).get("MAILBRIDGE_CONSUMER_DURABLE")
    monitor = load_yaml(NATS_VALUES)["config"]["monitor"]

    assert _settings(worker) is MailWorkerSettings
    assert trigger["stream"] == MAIL_CMD.name
    assert trigger["consumer"] == (durable or MailWorkerSettings().consumer_durable)
    assert monitor["enabled"] and trigger["natsServerMonitoringEndpoint"].endswith(
        f":{monitor['port']}"
    )


def test_the_nats_values_use_keys_the_chart_has() -> None:
    values = load_yaml(NATS_VALUES)
    unknown = set(_key_paths(values)) - NATS_CHART_KEYS
    cluster, jetstream = values["config"]["cluster"], values["config"]["jetstream"]

    assert not unknown, f"not keys of the NATS chart (see NATS_CHART_KEYS): {unknown}"
    assert cluster == {"enabled": True, "replicas": 3}
    assert jetstream["enabled"] and jetstream["fileStore"]["enabled"]
    assert re.fullmatch(r"\d+Gi", jetstream["fileStore"]["pvc"]["size"])


def _key_paths(values: dict[str, Any], prefix: str = "") -> list[str]:
    paths: list[str] = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        paths += _key_paths(value, f"{path}.") if isinstance(value, dict) else [path]
    return paths
