"""Schemathesis against the running config-api: requests generated from the OpenAPI document for
every operation but the SSE stream (which never ends), with a valid operator key, checked by
Schemathesis's default checks: no 5xx, and every status, content type, header and body as
documented. Bounded: 25 generated requests per operation, plus its examples and coverage cases."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from mailbridge.config_api.entrypoints.examples import AGENT_ID as EXAMPLE_AGENT
from mailbridge.devstack import contract
from mailbridge.devstack.mailstack import MailStack
from mailbridge.shared.ids import new_id
from tests.e2e.conftest import RunningSystem
from tests.e2e.mailboxes import Agent, agent_with_mailbox

SSE_STREAM = "/bridge/agents/{agent_id}/email-config/events"
TIMEOUT_SECONDS = 15  # above the connection test's own timeout, whose 504 is documented
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"deterministic": True, "database": "none"},
        "checks": {
            "positive_data_acceptance": {
                # 422 `invalid_input` also answers what the JSON Schema cannot say: addresses that
                # email-validator refuses, unknown presets, no recipient in to/cc/bcc, an app password
                # missing; and Schemathesis's coverage phase sends If-Match values its pattern refuses.
                # 412 is a stale If-Match. The check still fails on any other 4xx for valid data.
                "expected-statuses": [
                    "2xx",
                    "3xx",
                    "401",
                    "403",
                    "404",
                    "409",
                    "412",
                    "422",
                    "429",
                ],
            },
            # Starlette answers a 405 with the `Allow` of the first route on the path, not of all.
            "allow_header_conformance": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_dict(contract.openapi(), config=CONFIG).exclude(path=SSE_STREAM)


@pytest.fixture
async def example_agent(api: httpx.AsyncClient, mail_stack: MailStack) -> Agent:
    """A new agent with a real mailbox and a saved config, one per operation: it stands in for the
    documented example agent, so the example requests reach the 2xx answers (a passing connection
    test, a queued send) and not only 404s."""
    return await agent_with_mailbox(api, mail_stack)


@schema.parametrize()
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_live_api_answers_as_documented(
    case: schemathesis.Case, system: RunningSystem, example_agent: Agent
) -> None:
    if case.path_parameters and case.path_parameters.get("agent_id") == EXAMPLE_AGENT:
        case.path_parameters["agent_id"] = example_agent.agent_id
    headers = {"Authorization": f"Bearer {system.operator_key}"}
    response = case.call(base_url=system.base_url, headers=headers, timeout=TIMEOUT_SECONDS)
    case.validate_response(
        response,
        headers=headers,
        transport_kwargs={
            "base_url": system.base_url,
            "headers": headers,
            "timeout": TIMEOUT_SECONDS,
        },
    )


def test_a_body_that_is_not_utf8_is_answered_with_a_problem(system: RunningSystem) -> None:
    response = httpx.put(
        f"{system.base_url}/bridge/agents/{new_id('agent')}",
        content=b"W\xe9",
        headers={
            "Authorization": f"Bearer {system.operator_key}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_input"
