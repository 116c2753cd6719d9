"""Sealing keys rotate: ``python -m mailbridge.config_api keys rotate-secrets`` re-seals every stored
secret under the newest key, survives being killed midway, and a sealed value opens only in its own
row. Without a sealing key config-api does not start. Real PostgreSQL, the command as a process.

Each test gets a database of its own: rows another test sealed under a key unknown here would stop
the rotation (it cannot open them), and this file's counts would include them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from mailbridge.config_api.adapters.postgres import SCHEMA
from mailbridge.devstack.processes import free_port
from mailbridge.shared import postgres
from mailbridge.shared.crypto import Sealer, SealingError, generate_key_spec, parse_keys
from mailbridge.shared.ids import new_id

MIGRATIONS = Path(__file__).resolve().parents[2] / "services/config-api/migrations"
OLD = generate_key_spec("old")
NEW = generate_key_spec("new")
ROTATING = f"{NEW},{OLD}"  # the first seals, every one opens


def _env(database_url: str, sealing_keys: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBRIDGE_")}
    env["MAILBRIDGE_DATABASE_URL"] = database_url
    if sealing_keys is not None:
        env["MAILBRIDGE_SEALING_KEYS"] = sealing_keys
    return env


def _rotate_command() -> list[str]:
    return [sys.executable, "-m", "mailbridge.config_api", "keys", "rotate-secrets"]


async def _seed(database_url: str, count: int, sealing_keys: str = OLD) -> dict[str, str]:
    """``count`` agents with an IMAP config whose password is sealed as config-api seals it."""
    sealer = Sealer(parse_keys(sealing_keys))
    batch = new_id("rot")
    secrets = {f"{batch}-{n:05d}": f"app-password-{n}-{new_id()}" for n in range(count)}
    connection = await asyncpg.connect(database_url)
    try:
        await postgres.migrate(connection, SCHEMA, MIGRATIONS)
        async with connection.transaction():
            await connection.executemany(
                "INSERT INTO config_api.agents (agent_id, org_id) VALUES ($1, 'org-rotation')",
                [(agent_id,) for agent_id in secrets],
            )
            await connection.executemany(
                "INSERT INTO config_api.email_configs (agent_id, provider, email, sealed_secret)"
                " VALUES ($1, 'imap', $2, $3)",
                [
                    (agent_id, f"{agent_id}@example.com", sealer.seal(secret, agent_id))
                    for agent_id, secret in secrets.items()
                ],
            )
    finally:
        await connection.close()
    return secrets


async def _sealed(database_url: str, agent_ids: list[str]) -> dict[str, str]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT agent_id, sealed_secret FROM config_api.email_configs"
            " WHERE agent_id = ANY($1::text[])",
            agent_ids,
        )
    finally:
        await connection.close()
    return {row["agent_id"]: row["sealed_secret"] for row in rows}


def _assert_all_resealed(secrets: dict[str, str], sealed: dict[str, str]) -> None:
    assert sealed.keys() == secrets.keys()
    only_new = Sealer(parse_keys(NEW))
    not_new = [agent_id for agent_id, value in sealed.items() if not value.startswith("new.")]
    assert not_new == [], f"{len(not_new)} rows still sealed under another key"
    wrong = [a for a, value in sealed.items() if only_new.open(value, a) != secrets[a]]
    assert wrong == []


async def _run_rotation(database_url: str) -> str:
    done = await asyncio.to_thread(
        subprocess.run,
        _rotate_command(),
        env=_env(database_url, ROTATING),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_rotation_reseals_every_secret_under_the_new_key(fresh_database: str) -> None:
    secrets = await _seed(fresh_database, 250)
    before = await _sealed(fresh_database, list(secrets))
    assert all(value.startswith("old.") for value in before.values())

    output = await _run_rotation(fresh_database)

    assert output.strip() == "re-sealed 250 secrets"
    after = await _sealed(fresh_database, list(secrets))
    _assert_all_resealed(secrets, after)
    assert all(after[a] != before[a] for a in secrets)  # new ciphertexts, not relabelled ones
    with pytest.raises(SealingError):  # the old key alone no longer opens them
        Sealer(parse_keys(OLD)).open(next(iter(after.values())), next(iter(after)))
    assert (await _run_rotation(fresh_database)).strip() == "re-sealed 0 secrets"


async def test_a_rotation_killed_midway_resumes_where_it_stopped(fresh_database: str) -> None:
    total = 3000
    secrets = await _seed(fresh_database, total)
    watcher = await asyncpg.connect(fresh_database)
    rotation = await asyncio.create_subprocess_exec(
        *_rotate_command(),
        env=_env(fresh_database, ROTATING),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        resealed = await _count_new(watcher)
        async with asyncio.timeout(60):
            while resealed == 0:  # wait for the first committed batch…
                assert rotation.returncode is None, await rotation.stderr.read()  # type: ignore[union-attr]
                await asyncio.sleep(0.002)
                resealed = await _count_new(watcher)
        async with watcher.transaction():
            # …then hold its next UPDATE (SHARE blocks row writes, waiting out the batch in
            # flight), so the kill lands between batches: some re-sealed, not all
            await watcher.execute("LOCK TABLE config_api.email_configs IN SHARE MODE")
            committed = await _count_new(watcher)
            assert 0 < committed < total, committed
            rotation.send_signal(signal.SIGKILL)
            await rotation.wait()
    finally:
        if rotation.returncode is None:
            rotation.kill()
            await rotation.wait()
    assert rotation.returncode == -signal.SIGKILL
    assert await _count_new(watcher) == committed  # the batch in flight was rolled back
    await watcher.close()

    output = await _run_rotation(fresh_database)

    assert output.strip() == f"re-sealed {total - committed} secrets"  # only what was left
    _assert_all_resealed(secrets, await _sealed(fresh_database, list(secrets)))


async def _count_new(connection: asyncpg.Connection) -> int:
    count: int = await connection.fetchval(
        "SELECT count(*) FROM config_api.email_configs WHERE sealed_secret LIKE 'new.%'"
    )
    return count


async def test_a_sealed_secret_copied_into_another_row_does_not_open(fresh_database: str) -> None:
    secrets = await _seed(fresh_database, 2)
    await _run_rotation(fresh_database)
    first, second = secrets
    connection = await asyncpg.connect(fresh_database)
    try:
        await connection.execute(
            "UPDATE config_api.email_configs SET sealed_secret ="
            " (SELECT sealed_secret FROM config_api.email_configs WHERE agent_id = $1)"
            " WHERE agent_id = $2",
            first,
            second,
        )
    finally:
        await connection.close()
    sealed = await _sealed(fresh_database, [first, second])
    sealer = Sealer(parse_keys(ROTATING))

    assert sealed[first] == sealed[second]
    assert sealer.open(sealed[first], first) == secrets[first]
    with pytest.raises(SealingError):
        sealer.open(sealed[second], second)


@pytest.mark.parametrize("sealing_keys", [None, "", " , "], ids=["unset", "empty", "blank"])
def test_config_api_refuses_to_start_without_a_sealing_key(
    postgres_dsn: str, sealing_keys: str | None
) -> None:
    env = _env(postgres_dsn, sealing_keys)
    env["MAILBRIDGE_HTTP_PORT"] = str(free_port())
    env["MAILBRIDGE_NATS_URL"] = "nats://127.0.0.1:1"  # never reached: it must stop before

    try:
        started = subprocess.run(
            [sys.executable, "-m", "mailbridge.config_api"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("config-api kept running without a sealing key")

    assert started.returncode != 0
    assert "MAILBRIDGE_SEALING_KEYS" in started.stderr, started.stderr


async def test_a_row_locked_during_the_rotation_is_still_resealed(fresh_database: str) -> None:
    """A save holding one row's lock while the rotation runs must not leave that row under the
    old key with the command reporting success: the operator would then retire the old key."""
    secrets = await _seed(fresh_database, 5)
    held = next(iter(secrets))
    saver = await asyncpg.connect(fresh_database)
    try:
        transaction = saver.transaction()
        await transaction.start()
        await saver.execute(
            "SELECT 1 FROM config_api.email_configs WHERE agent_id = $1 FOR UPDATE", held
        )
        rotation = asyncio.create_task(asyncio.to_thread(
            subprocess.run, _rotate_command(), env=_env(fresh_database, ROTATING),
            capture_output=True, text=True, timeout=120,
        ))  # fmt: skip
        # a rotation that waits for the lock is fine; one that returns meanwhile…
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(rotation), timeout=15)
        await transaction.rollback()
        done = await rotation
    finally:
        await saver.close()

    remaining = [
        a
        for a, v in (await _sealed(fresh_database, list(secrets))).items()
        if not v.startswith("new.")
    ]
    # …must either fail or have re-sealed the held row too
    assert done.returncode != 0 or remaining == [], (
        f"rotate-secrets exited 0 ({done.stdout.strip()!r}) leaving {remaining} under the old key"
    )
