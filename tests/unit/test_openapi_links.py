"""The OpenAPI document's links lead somewhere: each names an operation the document has, a
parameter of it, and a value the answer or request it starts from carries; a renamed route fails
here (and when the document is built) instead of leaving a link to nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import schemathesis

from mailbridge.config_api.entrypoints import links
from mailbridge.config_api.entrypoints.links import Link, LinkError
from mailbridge.devstack import contract

Document = dict[str, Any]


@pytest.fixture(scope="module")
def document() -> Document:
    return contract.openapi()


def every_link(document: Document) -> list[tuple[str, str, str, str, Document]]:
    """(method, path, status, name, link) for every link in the document."""
    return [
        (method, path, status, name, link)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status, answer in operation["responses"].items()
        for name, link in answer.get("links", {}).items()
    ]


def operations_by_id(document: Document) -> dict[str, Document]:
    return {
        operation["operationId"]: operation
        for operations in document["paths"].values()
        for operation in operations.values()
    }


def test_every_link_is_in_the_document(document: Document) -> None:
    assert len(every_link(document)) == len(links.LINKS)


def test_every_link_names_an_operation_and_its_parameters(document: Document) -> None:
    by_id = operations_by_id(document)
    for method, path, status, name, link in every_link(document):
        target = by_id.get(link["operationId"])
        assert target is not None, f"{method} {path} {status} {name}: no {link['operationId']}"
        declared = {(p["in"], p["name"].lower()) for p in target.get("parameters", [])}
        for qualified in link["parameters"]:
            location, _, parameter = qualified.partition(".")
            assert (location, parameter.lower()) in declared, f"{name}: no {qualified}"


def test_every_path_parameter_of_a_target_is_given(document: Document) -> None:
    """A link that left a path parameter to chance would lead to a 404 most of the time."""
    by_id = operations_by_id(document)
    for _, _, _, name, link in every_link(document):
        target = by_id[link["operationId"]]
        required = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
        given = {q.partition(".")[2] for q in link["parameters"] if q.startswith("path.")}
        assert required <= given, f"{name} leaves {sorted(required - given)} to chance"


def test_a_send_is_followed_by_the_command_id_of_its_answer(document: Document) -> None:
    send = document["paths"]["/bridge/agents/{agent_id}/messages"]["post"]
    follow = send["responses"]["202"]["links"]["FollowSend"]
    assert follow["parameters"] == {
        "path.agent_id": "$request.path.agent_id",
        "path.command_id": "$response.body#/command_id",
    }


def test_schemathesis_builds_its_state_machine_from_the_links(document: Document) -> None:
    """The document with its links is valid OpenAPI 3.1, and Schemathesis, which refuses a link
    to an unknown operation or parameter (InvalidStateMachine), makes each a transition."""
    only_links = schemathesis.Config.from_dict(
        {"phases": {"stateful": {"inference": {"algorithms": []}}}}
    )
    loaded = schemathesis.openapi.from_dict(document, config=only_links)
    loaded.validate()
    machine = loaded.as_state_machine()
    rules = [name for name in vars(machine) if not name.startswith(("_", "RANDOM"))]
    transitions = [name for name in rules if callable(getattr(machine, name))]
    for link in links.LINKS:
        assert any(f"_{link.name}_" in name for name in transitions), link.name


@pytest.mark.parametrize(
    "wrong",
    [
        Link(links.AGENT, "200", "Renamed", ("get", "/bridge/agents/{id}/config"), "gone"),
        Link(("put", "/bridge/agent/{agent_id}"), "200", "FromNowhere", links.GET_CONFIG, "gone"),
        Link(links.AGENT, "201", "NoSuchAnswer", links.GET_CONFIG, "gone", links.SAME_AGENT),
        Link(links.AGENT, "200", "NoSuchParameter", links.GET_CONFIG, "x", {"path.agent": "1"}),
        Link(
            links.AGENT, "200", "NoSuchValue", links.GET_CONFIG, "x",
            {"path.agent_id": "$response.body#/id"},
        ),
        Link(
            links.SEND, "202", "NoSuchHeader", links.SEND_STATUS, "x",
            {**links.SAME_AGENT, "path.command_id": "$response.header.Location"},
        ),
    ],
    ids=lambda link: link.name,
)  # fmt: skip
def test_a_link_that_leads_nowhere_fails_the_document(document: Document, wrong: Link) -> None:
    with pytest.raises(LinkError, match=wrong.name):
        links.add_links(copy.deepcopy(document), (wrong,))
