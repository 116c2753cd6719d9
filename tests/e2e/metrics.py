"""Reading a service's Prometheus metrics from its health port, as an operator's scraper would."""

from __future__ import annotations

import httpx

from mailbridge.devstack.system import RunningSystem


async def metrics_of(system: RunningSystem, service: str) -> str:
    spec = next(s for s in system.supervisor.services if s.name == service)
    assert spec.ready_url is not None, f"{service} has no health port"
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(spec.ready_url.replace("/readyz", "/metrics"))
    answer.raise_for_status()
    return answer.text


def counted(metrics: str, series: str) -> float:
    """A series' value in a Prometheus text exposition (0 when absent)."""
    line = next((line for line in metrics.splitlines() if line.startswith(series + " ")), None)
    return float(line.rsplit(" ", 1)[1]) if line else 0.0
