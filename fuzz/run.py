"""``python -m fuzz.run TARGET --seconds N``: coverage-guided fuzzing of one target, for N seconds.

libFuzzer (through atheris) mutates the inputs of ``fuzz/corpus/TARGET/``. An input that breaks
the contract is kept in ``fuzz/crashes/TARGET/`` (git-ignored), once for each place it breaks it,
and fuzzing goes on; a hang (an input over PER_INPUT_SECONDS) ends the run there. Then the corpus
is minimized: of the committed inputs and the new ones, libFuzzer's merge keeps a small set with
the same code coverage, less any that breaks the contract; the hand-made seeds (``seed-*``) and
the fixed crashes (``bug-*``) always stay. The run fails when it found a crash.
``--seconds 0`` only minimizes; ``--replay FILE...`` runs inputs through the target alone.

libFuzzer runs its merge helper by executing its own command line again, which a Python module
is not, so the engine runs through a small executable wrapper around ``--engine``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEPT = ("seed-", "bug-")  # never dropped by minimization
INSTRUMENTED = ["email", "mailbridge", "idna", "quopri", "base64", "urllib", "fuzz"]
TARGET_NAMES = ("addresses", "headers", "mime", "received", "screening", "autoconfig")
PER_INPUT_SECONDS = 10  # far beyond any contract's bound: a hang, not a slow input


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("target", choices=TARGET_NAMES)
    arguments.add_argument("--seconds", type=int, default=60)
    arguments.add_argument("--replay", nargs="+", type=Path, metavar="FILE")
    arguments.add_argument("--engine", action="store_true", help=argparse.SUPPRESS)
    options, engine_flags = arguments.parse_known_args()
    if options.engine:
        return engine(options.target, engine_flags)
    if options.replay:
        return replay(options.target, options.replay)
    return fuzz(options.target, options.seconds)


def engine(target: str, flags: list[str]) -> int:
    """The libFuzzer process: the target's modules instrumented for coverage, then fuzzed."""
    import atheris

    with atheris.instrument_imports(include=INSTRUMENTED):
        from fuzz.targets import TARGETS
    crashes = Path(os.environ.get("FUZZ_CRASHES", HERE / "crashes" / target))
    one_input = _going_on(TARGETS[target].run, crashes)
    # libFuzzer starts its merge helper with this first argument: the wrapper
    atheris.Setup([os.environ.get("FUZZ_ENGINE", sys.argv[0]), *flags], one_input)
    atheris.Fuzz()
    return 0


def _going_on(run: Callable[[bytes], None], crashes: Path) -> Callable[[bytes], None]:
    """``run``, but an input that breaks the contract is written to ``crashes`` (once for each
    place it breaks it) and fuzzing goes on: the known bugs of code being fixed elsewhere would
    otherwise end every run at its first input. A hang still ends it (libFuzzer's -timeout)."""
    seen: set[tuple[str, str]] = set()

    def one_input(data: bytes) -> None:
        try:
            run(data)
        except Exception as broken:
            where = traceback.extract_tb(broken.__traceback__)[-1]
            signature = (type(broken).__name__, f"{where.filename}:{where.lineno}")
            if signature not in seen:
                seen.add(signature)
                path = crashes / f"crash-{hashlib.sha1(data).hexdigest()}"  # noqa: S324
                path.write_bytes(data)
                print(f"CRASH {signature[0]} at {signature[1]}: {path}", flush=True)

    return one_input


def fuzz(target: str, seconds: int) -> int:
    from fuzz.targets import TARGETS  # not instrumented: this process only orchestrates

    corpus, crashes = HERE / "corpus" / target, HERE / "crashes" / target
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    before = set(crashes.iterdir())
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as scratch:
        wrapper = _wrapper(Path(scratch), target)
        found = Path(scratch) / "found"
        found.mkdir()
        flags = [
            f"-max_total_time={seconds}",
            f"-max_len={TARGETS[target].max_len}",
            f"-timeout={PER_INPUT_SECONDS}",
            "-rss_limit_mb=4096",
            "-print_final_stats=1",
            f"-artifact_prefix={crashes}/",
        ]
        engine_env = os.environ | {"FUZZ_CRASHES": str(crashes)}
        if seconds > 0:  # 0 only minimizes the corpus (libFuzzer reads 0 as no limit)
            subprocess.run([wrapper, *flags, str(found), str(corpus)], check=False, env=engine_env)
        _minimize(wrapper, corpus, found, Path(scratch) / "minimal", target)
    new_crashes = sorted(set(crashes.iterdir()) - before)
    print(f"fuzz {target}: {len(list(corpus.iterdir()))} corpus files, {len(new_crashes)} crashes")
    for crash in new_crashes:
        print(f"  {crash}  (python -m fuzz.run {target} --replay {crash})")
    return 1 if new_crashes else 0


def _wrapper(scratch: Path, target: str) -> Path:
    wrapper = scratch / "engine"
    command = f'FUZZ_ENGINE="$0" exec "{sys.executable}" -m fuzz.run {target} --engine "$@"\n'
    wrapper.write_text(f'#!/bin/sh\ncd "{HERE.parent}"\n{command}')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


def _minimize(wrapper: Path, corpus: Path, found: Path, minimal: Path, target: str) -> None:
    """The corpus becomes its kept inputs and a small set of the others and the new ones that
    adds the same code coverage to them (libFuzzer's set-cover merge counts what the output folder
    already holds)."""
    minimal.mkdir()
    pool = found.parent / "pool"
    pool.mkdir()
    for source in (*corpus.iterdir(), *found.iterdir()):
        shutil.copy(source, (minimal if source.name.startswith(KEPT) else pool) / source.name)
    # edges only, not how often each ran: tens of inputs rather than hundreds cover the same code
    merge = [wrapper, "-set_cover_merge=1", "-use_counters=0", f"-timeout={PER_INPUT_SECONDS}"]
    merge += [str(minimal), str(pool)]
    subprocess.run(merge, check=False, capture_output=True)
    for stale in corpus.iterdir():
        stale.unlink()
    for chosen in minimal.iterdir():
        if chosen.name.startswith(KEPT) or _keeps_contract(target, chosen.read_bytes()):
            shutil.copy(chosen, corpus / chosen.name)


def _keeps_contract(target: str, data: bytes) -> bool:
    from fuzz.targets import TARGETS

    try:
        TARGETS[target].run(data)
    except Exception:
        return False  # already in crashes/: the corpus holds what passes, and fixed bugs
    return True


def replay(target: str, paths: list[Path]) -> int:
    """Each input through the target, without atheris: a traceback for each that breaks it."""
    from fuzz.targets import TARGETS

    failed = 0
    for path in paths:
        try:
            TARGETS[target].run(path.read_bytes())
        except Exception:
            failed += 1
            print(f"--- {path}")
            traceback.print_exc()
    print(f"{len(paths) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
