"""Schemathesis against the running config-api, with a valid operator key and every check it has.

Stateless: requests generated from the OpenAPI document for every operation but the SSE stream
(which never ends), `STATELESS_EXAMPLES` per operation plus its examples and coverage cases.
Stateful: scenarios that chain the operations along the document's links (entrypoints/links.py):
an agent is registered, then its mailbox saved, read, tested, saved over with the `ETag` just read,
disconnected; a send is followed by its `command_id`; its org's apps and client org set, read and
removed. Both fail on any 5xx and on any status, content type, header or body not as documented.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, MultipleResults, initialize, multiple
from schemathesis.generation.meta import TestPhase
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput

from mailbridge.config_api.entrypoints import links
from mailbridge.config_api.entrypoints.examples import AGENT_ID as EXAMPLE_AGENT
from mailbridge.devstack import contract
from mailbridge.devstack.mailstack import MailStack
from mailbridge.shared.ids import new_id
from tests.e2e.conftest import TEST_TIMEOUT_SECONDS, RunningSystem
from tests.e2e.mailboxes import Agent, agent_with_mailbox, imap_config

SSE_STREAM = "/bridge/agents/{agent_id}/email-config/events"
TIMEOUT_SECONDS = 15  # above the connection test's own timeout, whose 504 is documented
STATELESS_EXAMPLES = 100
SCENARIOS, STEPS_PER_SCENARIO = 50, 25

# A DELETE of these is not the end of the resource: SPEC §4 has a disconnected config answer
# `not_connected` and an org without shared apps answer nulls, so a 200 after it is no use after
# free. The check stays on for every other read (a deleted client org must answer 404).
NOT_GONE_AFTER_DELETE = [links.GET_CONFIG, links.GET_ORG_APPS]
EXPECTED_STATUSES = ["2xx", "404", "409", "412", "413", "422"]  # for valid data: see below
EMAIL_TAB_SESSION = "/ui/sessions/"
SETTINGS: dict[str, Any] = {
    "generation": {"deterministic": True, "database": "none"},
    "phases": {
        "stateful": {
            # the document's links only: the inferred ones guess (an agent's id as a command_id)
            "inference": {"algorithms": []},
            # valid requests, to go deep along the links; the stateless test sends the invalid
            "generation": {"mode": "positive"},
        }
    },
    "checks": {
        # every built-in check is on by default but this one, which needs a limit: the slowest
        # documented answer is a connection test, which waits that long for a mail-worker
        "max_response_time": TEST_TIMEOUT_SECONDS + 2,
        "positive_data_acceptance": {
            # Valid data by the schema may still be refused, each for a reason the document
            # states: 404 an unknown agent, send or client org (or another org's), 409 an agent
            # without a config yet (test, send), 412 a stale If-Match, 413 a send over the stated
            # size limits, 422 what the JSON Schema cannot say (addresses and domains that
            # email-validator refuses, unknown presets, no recipient in to/cc/bcc, a custom
            # config without both servers, a new OAuth app without its secret, an org with no
            # shared app for the provider; and the coverage phase's If-Match values its pattern
            # refuses). Any other 4xx fails the check; any 5xx fails not_a_server_error.
            "expected-statuses": EXPECTED_STATUSES,
        },
    },
    "operations": [
        *(
            {
                "include-method": method.upper(),
                "include-path": path,
                "checks": {"use_after_free": {"enabled": False}},
            }
            for method, path in NOT_GONE_AFTER_DELETE
        ),
        {
            # The Email tab's own routes take its session cookie, and the run has no session (a
            # token of the right shape is still no link's): each answers 401, as documented.
            "include-path-regex": f"^{EMAIL_TAB_SESSION}",
            "checks": {
                "positive_data_acceptance": {"expected-statuses": [*EXPECTED_STATUSES, "401"]}
            },
        },
    ],
}
DOCUMENT = contract.openapi()
schema = schemathesis.openapi.from_dict(
    DOCUMENT, config=schemathesis.Config.from_dict(SETTINGS)
).exclude(path=SSE_STREAM)


def operator(system: RunningSystem) -> dict[str, str]:
    return {"Authorization": f"Bearer {system.operator_key}"}


@pytest.fixture
async def example_agent(api: httpx.AsyncClient, mail_stack: MailStack) -> Agent:
    """A new agent with a real mailbox and a saved config, one per operation: it stands in for the
    documented example agent, so the example requests reach the 2xx answers (a passing connection
    test, a queued send) and not only 404s."""
    return await agent_with_mailbox(api, mail_stack)


@schema.parametrize()
@settings(
    max_examples=STATELESS_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_the_live_api_answers_as_documented(
    case: schemathesis.Case, system: RunningSystem, example_agent: Agent
) -> None:
    if case.path_parameters and case.path_parameters.get("agent_id") == EXAMPLE_AGENT:
        case.path_parameters["agent_id"] = example_agent.agent_id
    headers = operator(system)
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


def documented_bodies(method_path: tuple[str, str]) -> list[Any]:
    """The examples the document gives for an operation's request body (each of a ``oneOf``)."""
    method, path = method_path
    body = DOCUMENT["paths"][path][method].get("requestBody", {})
    shape = body.get("content", {}).get("application/json", {}).get("schema", {})
    named = [branch["$ref"].rsplit("/", 1)[1] for branch in shape.get("oneOf", [shape])]
    return [
        e for name in named for e in DOCUMENT["components"]["schemas"][name].get("examples", [])
    ]


def linked_schema(system: RunningSystem) -> Any:
    """The document with the operator key as the run's bearer credentials (which Schemathesis
    leaves out of the cases meant to go without, and which its ignored_auth check replaces).

    A send's or a client org's body is generated, or half the time a documented example: a
    generated send is all but never accepted (a free-form string is rarely an address), and a chain
    stops at its first 422."""
    credentials = {"auth": {"openapi": {"HTTPBearer": {"bearer": system.operator_key}}}}
    config = schemathesis.Config.from_dict({**SETTINGS, **credentials})
    linked = schemathesis.openapi.from_dict(DOCUMENT, config=config).exclude(path=SSE_STREAM)
    documented = {operation: documented_bodies(operation) for operation in DOCUMENTED_TOO}

    @linked.hook("before_generate_body")
    def also_documented(context: Any, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        bodies = documented.get((context.operation.method.lower(), context.operation.path))
        return st.one_of(strategy, st.sampled_from(bodies)) if bodies else strategy

    return linked


DOCUMENTED_TOO = [links.SEND, links.PUT_CLIENT_ORG]


def own_ids(registration: schemathesis.Case) -> None:
    """Give the agent, its org and client org ids of this scenario's own (DESIGN §5): with the ids
    Hypothesis draws first (`0` each time), scenarios would share an agent, and a replayed prefix
    that met another scenario's state would draw differently, which Hypothesis takes for a flaky
    strategy."""
    registration.path_parameters["agent_id"] = new_id("agent")
    registration.body["org_id"] = new_id("org")
    if registration.body.get("client_org_id") is not None:
        registration.body["client_org_id"] = new_id("client")


def linked_workflow(system: RunningSystem, mailbox: dict[str, Any], answered: Counter[str]) -> Any:
    """The state machine over the document's links, against the live API; ``answered`` counts
    each operation's statuses, so the test can tell that the chains went past their first step."""
    linked = linked_schema(system)
    register = linked[links.AGENT[1]][links.AGENT[0].upper()]
    save = linked[links.PUT_CONFIG[1]][links.PUT_CONFIG[0].upper()]

    class LinkedWorkflow(linked.as_state_machine()):
        @initialize(
            target=Bundle("started"),
            registration=register.as_strategy(phase=TestPhase.STATEFUL),
            data=st.data(),
        )
        def start_with_an_agent_and_its_mailbox(
            self, registration: schemathesis.Case, data: st.DataObject
        ) -> MultipleResults[StepOutput]:
            """Schemathesis starts its scenarios with POSTs and GETs without path parameters only;
            an agent is registered with a PUT. So every scenario starts by registering one and
            saving it a real mailbox of the local mail stack (a generated config is all but
            never accepted, and rarely a mailbox that answers), each recorded as Schemathesis
            records its own first steps, so that the links from both answers are followed."""
            own_ids(registration)
            saving = data.draw(
                save.as_strategy(
                    phase=TestPhase.STATEFUL,
                    path_parameters=registration.path_parameters,
                    body=mailbox,
                )
            )
            saving.headers.pop("if-match", None)  # a new config has no version to match
            return multiple(self.first_step(registration), self.first_step(saving))

        def first_step(self, case: schemathesis.Case) -> StepOutput:
            step = StepInput.initial(case)
            self.recorder.record_case(case=case)
            self.control.record_step(step, self.recorder)
            return self._step(step)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": system.base_url, "timeout": TIMEOUT_SECONDS}

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            answered[f"{case.method} {case.path} {response.status_code}"] += 1

    return LinkedWorkflow


# Operations that answer 2xx only when a link gave them their ids (an agent that has a config, a
# send's command_id, a client org that exists): each must have, or the chains went nowhere.
FOLLOWED_TO_2XX = [
    links.GET_CONFIG,
    links.DELETE_CONFIG,
    links.TEST,
    links.SEND_STATUS,
    links.GET_CLIENT_ORG,
    links.DELETE_CLIENT_ORG,
]


def test_the_live_api_holds_along_its_links(system: RunningSystem, mail_stack: MailStack) -> None:
    password = "app-" + new_id()
    address = mail_stack.create_mailbox(new_id("linked").replace("_", "-"), password)
    answered: Counter[str] = Counter()
    mailbox = imap_config(mail_stack.endpoints, address, password)
    workflow = linked_workflow(system, mailbox, answered)
    workflow.run(
        settings=settings(
            workflow.TestCase.settings,
            max_examples=SCENARIOS,
            stateful_step_count=STEPS_PER_SCENARIO,
            derandomize=True,
            database=None,
        )
    )
    reached = {step.rsplit(" ", 1)[0] for step in answered if step.rsplit(" ", 1)[1][0] == "2"}
    followed = {f"{method.upper()} {path}" for method, path in FOLLOWED_TO_2XX}
    assert followed <= reached, (sorted(followed - reached), answered)


def test_a_body_that_is_not_utf8_is_answered_with_a_problem(system: RunningSystem) -> None:
    response = httpx.put(
        f"{system.base_url}/bridge/agents/{new_id('agent')}",
        content=b"W\xe9",
        headers={**operator(system), "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_input"
