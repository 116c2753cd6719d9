"""``python -m fuzz.minimize TARGET FILE``: the smallest input that fails as FILE does.

Delta debugging over bytes (Zeller's ddmin), kept when the target fails with the same exception
type at the same place; prints the result as a Python literal, for a report or an ``@example``.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from fuzz.targets import TARGETS


def signature(run: Callable[[bytes], None], data: bytes) -> tuple[str, str, int] | None:
    """How ``run`` fails on ``data`` (exception type, file, line), or None when it does not."""
    try:
        run(data)
    except Exception as broken:
        where = traceback.extract_tb(broken.__traceback__)[-1]
        return type(broken).__name__, where.filename, where.lineno or 0
    return None


def minimize(run: Callable[[bytes], None], data: bytes) -> bytes:
    wanted = signature(run, data)
    assert wanted is not None, "the input keeps the contract"
    chunks = 2
    while len(data) >= 2:
        size = max(1, len(data) // chunks)
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
        for index in range(len(pieces)):
            candidate = b"".join(pieces[:index] + pieces[index + 1 :])
            if signature(run, candidate) == wanted:
                data, chunks = candidate, max(chunks - 1, 2)
                break
        else:
            if size == 1:
                return data
            chunks = min(chunks * 2, len(data))
    return data


def main() -> None:
    target, path = sys.argv[1], Path(sys.argv[2])
    run = TARGETS[target].run
    smallest = minimize(run, path.read_bytes())
    print(repr(smallest))
    print(signature(run, smallest))


if __name__ == "__main__":
    main()
