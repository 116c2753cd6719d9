"""Operator commands: ``python -m mailbridge.config_api keys create|list|revoke|rotate-secrets``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import asyncpg

from mailbridge.config_api.adapters.api_keys import PostgresApiKeyStore
from mailbridge.config_api.adapters.postgres import MIGRATIONS, SCHEMA, reseal_batch
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared import postgres
from mailbridge.shared.crypto import Sealer, SealingError, parse_keys


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m mailbridge.config_api")
    keys = root.add_subparsers(dest="group", required=True).add_parser("keys", help="API keys")
    commands = keys.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key; it is shown once")
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--org", help="an org key: reaches this org's agents only")
    scope.add_argument("--operator", action="store_true", help="an operator key: every org")
    create.add_argument("--name", default="", help="a label to recognise the key by")
    commands.add_parser("list", help="list keys (never their secrets)")
    revoke = commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    commands.add_parser("rotate-secrets", help="re-seal every stored secret under the newest key")
    return root


async def run(argv: Sequence[str], settings: ConfigApiSettings) -> int:
    args = parser().parse_args(argv)
    pool = await postgres.open_database(
        settings.database_url.get_secret_value(), schema=SCHEMA, migrations=MIGRATIONS,
        min_size=1, max_size=2,
    )  # fmt: skip
    try:
        return await _dispatch(args, pool, settings)
    finally:
        await pool.close()


async def _dispatch(
    args: argparse.Namespace, pool: asyncpg.Pool, settings: ConfigApiSettings
) -> int:
    store = PostgresApiKeyStore(pool)
    if args.command == "create":
        key = await store.create(None if args.operator else args.org, args.name)
        _out(f"key id: {key.key_id}\napi key (shown once): {key.token}")
    elif args.command == "list":
        for k in await store.list():
            scope = f"org {k.org_id}" if k.org_id else "operator"
            _out(f"{k.key_id}  {scope:<24} {k.name:<20} {'revoked' if k.revoked else 'active'}")
    elif args.command == "revoke":
        if not await store.revoke(args.key_id):
            _out(f"no active key {args.key_id}")
            return 1
        _out(f"revoked {args.key_id}")
    else:
        try:
            _out(f"re-sealed {await _rotate(pool, settings)} secrets")
        except SealingError as exc:
            _out(f"rotation stopped: {exc}; configure the key it was sealed with, then rerun")
            return 1
    return 0


async def _rotate(pool: asyncpg.Pool, settings: ConfigApiSettings) -> int:
    sealer = Sealer(parse_keys(settings.sealing_keys.get_secret_value()))
    total = 0
    for wait_for_locked in (False, True):  # fast past busy rows, then wait for them
        while done := await reseal_batch(pool, sealer, wait_for_locked=wait_for_locked):
            total += done
    return total


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
