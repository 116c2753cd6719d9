"""The ceiling for ``bench/api.py``: the least a FastAPI app can do to answer the same read.

One endpoint, the same path as config-api's, one asyncpg ``SELECT`` by primary key on the same
database, the row returned as JSON. No auth, no middleware, no response model. Run like
config-api: uvicorn in this one process, one worker, ``log_config=None``, and a pool of the same
size (min 1, max 10).

Started by ``bench/api.py`` as ``python bench/bare_app.py`` with ``BENCH_DSN``, ``BENCH_HOST``
and ``BENCH_PORT`` set.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI, HTTPException, Request

QUERY = "SELECT * FROM config_api.email_configs WHERE agent_id = $1"
POOL_MIN, POOL_MAX = 1, 10  # config-api's defaults (db_pool_min, db_pool_max)


def create_app(dsn: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=POOL_MIN, max_size=POOL_MAX)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(title="bench ceiling", lifespan=lifespan)

    @app.get("/bridge/agents/{agent_id}/email-config", response_model=None)
    async def get_email_config(agent_id: str, request: Request) -> dict[str, Any]:
        pool: asyncpg.Pool = request.app.state.pool
        row = await pool.fetchrow(QUERY, agent_id)
        if row is None:
            raise HTTPException(status_code=404)
        return dict(row)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    app = create_app(os.environ["BENCH_DSN"])
    uvicorn.run(
        app, host=os.environ["BENCH_HOST"], port=int(os.environ["BENCH_PORT"]), log_config=None
    )


if __name__ == "__main__":
    main()
