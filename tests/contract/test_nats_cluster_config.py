"""The clustered NATS as shipped: deploy/nats's files are configurations nats-server accepts, and
the replica count of streams and buckets is decided in one place only."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

from mailbridge.devstack.nats import nats_server_binary

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
NATS_DIR = ROOT / "deploy" / "nats"
NODE_FILES = sorted(NATS_DIR.glob("nats-?.conf"))
SOURCES = sorted([*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/*/src/**/*.py")])
THE_ONE_PLACE = ROOT / "libs/shared/src/mailbridge/shared/service.py"  # builds the context
REPLICA_RULE = ROOT / "libs/shared/src/mailbridge/shared/streams.py"  # applies the count


@pytest.mark.parametrize("config", [NATS_DIR / "nats.conf", *NODE_FILES], ids=lambda p: p.name)
def test_nats_server_accepts_the_configuration(config: Path) -> None:
    checked = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(config)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr  # an unknown or misspelled key fails here


def test_three_nodes_with_their_own_names_share_one_cluster_file() -> None:
    names = [re.search(r"^server_name: (\S+)$", p.read_text(), re.M) for p in NODE_FILES]
    assert [m.group(1) if m else None for m in names] == ["nats-a", "nats-b", "nats-c"]
    assert all("include ./cluster.conf" in p.read_text() for p in NODE_FILES)
    routes = re.findall(r"nats-route://(nats-\w):6222", (NATS_DIR / "cluster.conf").read_text())
    assert routes == ["nats-a", "nats-b", "nats-c"]  # every node routes to every node


def _calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)]


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def test_only_the_service_start_makes_a_jetstream_context() -> None:
    """Every part gets the one replicated context from ``service.start``; a service that made
    its own (``connection.jetstream()``) would create streams outside the setting."""
    makers = {
        str(path.relative_to(ROOT))
        for path in SOURCES
        for call in _calls(path)
        if _name(call) in {"jetstream", "JetStreamContext", "ReplicatedJetStream"}
    }
    assert makers == {str(THE_ONE_PLACE.relative_to(ROOT))}


def test_no_creation_site_chooses_its_own_replica_count() -> None:
    choosers = {
        str(path.relative_to(ROOT))
        for path in SOURCES
        for call in _calls(path)
        if any(k.arg in {"replicas", "num_replicas"} for k in call.keywords)
    }
    assert choosers <= {str(REPLICA_RULE.relative_to(ROOT))}
