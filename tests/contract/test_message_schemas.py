"""The committed JSON Schemas match the code, and no committed schema ever changed incompatibly."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest

from mailbridge.shared import schemas

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "contract" / "schemas"
GENERATED = schemas.generate()


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


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_every_committed_version_of_a_schema_grew_compatibly(name: str) -> None:
    versions = [json.loads(text) for text in reversed(_history(SCHEMA_DIR / name))]
    for older, newer in itertools.pairwise(versions):
        assert not schemas.incompatibilities(older, newer), f"{name} broke in its history"


def test_the_compatibility_rule_catches_a_removed_field_and_a_new_required_one() -> None:
    old = {"properties": {"a": {"type": "string"}}, "required": []}
    new = {"properties": {"b": {"type": "string"}}, "required": ["b"]}
    assert schemas.incompatibilities(old, new) == ["a: removed", "b: became required"]
