"""Every input the fuzzer kept, and every hand-made seed, still keeps its target's contract.

The corpus replays through the very functions atheris fuzzes (:mod:`fuzz.targets`), without the
fuzzing engine; a crash the fuzzer found stays here as ``bug-*`` once fixed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.targets import TARGETS

CORPUS = Path(__file__).resolve().parents[2] / "fuzz" / "corpus"
INPUTS = sorted(path for target in TARGETS for path in (CORPUS / target).glob("*"))


def test_every_target_has_a_seeded_corpus() -> None:
    for target in TARGETS:
        assert any(path.name.startswith("seed-") for path in (CORPUS / target).iterdir()), target


@pytest.mark.parametrize("path", INPUTS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_the_corpus_input_keeps_the_contract(path: Path) -> None:
    TARGETS[path.parent.name].run(path.read_bytes())
