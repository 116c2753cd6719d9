"""The committed JSON Schemas match the code, and no committed schema ever changed incompatibly
but for the steps recorded in ``ACCEPTED_ONCE``, each with its reason."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
from pathlib import Path

import pytest

from mailbridge.shared import schemas

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "contract" / "schemas"
GENERATED = schemas.generate()

TYPED_POLICY_RPC = (
    "the policy rpc bodies got their models (were dict[str, Any]); "
    "only caller is config-api, deployed with policy; accepted once instead of v2"
)
OAUTH_CONFIG_WITHOUT_ADDRESS = (
    "an OAuth config may leave the address to the grant, so Credentials.email became optional; "
    "its only reader is the mail-worker, deployed with config-api; accepted once instead of v2"
)
ACCEPTED_ONCE: dict[tuple[str, str, str], str] = {
    # (schema, version before, version after): why this incompatible step needs no v2. A version is
    # the start of its sha256 (`git show REV:contract/schemas/NAME | sha256sum`), so an entry covers
    # exactly one step: any later change to these schemas must be compatible again.
    ("rpc.policy.org.put.v1.json", "663a93fc2ed925a3", "d8d8cb5c055adc9a"): TYPED_POLICY_RPC,
    ("rpc.policy.client_org.put.v1.json", "866dc9d852049d96", "ec14e4417f925876"): TYPED_POLICY_RPC,
    ("reply.PolicyDocumentReply.json", "3a863966ab3a06a7", "094b8e5a12a11b35"): TYPED_POLICY_RPC,
    ("reply.EffectivePolicy.json", "dd0f01c6679da2cc", "b6b89d068ac1629e"): TYPED_POLICY_RPC,
    ("reply.CredentialsReply.json", "184b833b92bf2f3f", "21d19f874abf18c9"): (
        OAUTH_CONFIG_WITHOUT_ADDRESS
    ),
    ("reply.CredentialsReply.json", "21d19f874abf18c9", "184b833b92bf2f3f"): (
        "the optional Credentials.email waits for the mail-worker's OAuth transports; "
        "reverted to the schema every reader knows"
    ),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_the_committed_schema_matches_the_code(name: str) -> None:
    committed = SCHEMA_DIR / name
    assert committed.exists(), f"{name} is not committed: run `make schemas`"
    old = json.loads(committed.read_text())
    new = GENERATED[name]
    breaking = schemas.incompatibilities(old, new)
    assert not breaking, f"{name} changed incompatibly: {breaking}; publish a v2 message instead"
    assert old == new, f"{name} drifted from the code: run `make schemas` and commit"


def test_no_committed_schema_is_left_without_a_message() -> None:
    orphans = {p.name for p in SCHEMA_DIR.glob("*.json")} - set(GENERATED)
    assert not orphans, f"schemas without a message class (a v1 may not disappear): {orphans}"


def _history(path: Path) -> list[str]:
    shas = subprocess.run(
        ["git", "log", "--format=%H", "--", str(path.relative_to(ROOT))],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return [_show(sha, path) for sha in shas]


def _show(sha: str, path: Path) -> str:
    return subprocess.run(
        ["git", "show", f"{sha}:{path.relative_to(ROOT)}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def _version(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_every_committed_version_of_a_schema_grew_compatibly(name: str) -> None:
    versions = list(reversed(_history(SCHEMA_DIR / name)))
    for older, newer in itertools.pairwise(versions):
        if (name, _version(older), _version(newer)) in ACCEPTED_ONCE:
            continue
        breaking = schemas.incompatibilities(json.loads(older), json.loads(newer))
        assert not breaking, f"{name} broke in its history: {breaking}"


def test_the_compatibility_rule_catches_a_removed_field_and_a_new_required_one() -> None:
    old = {"properties": {"a": {"type": "string"}}, "required": []}
    new = {"properties": {"b": {"type": "string"}}, "required": ["b"]}
    assert schemas.incompatibilities(old, new) == ["a: removed", "b: became required"]
