"""OpenAPI links: which answer gives the values another operation needs (OpenAPI 3 ``links``).

A client reading the document learns that the agent registered by ``PUT /bridge/agents/{agent_id}``
is the one whose mailbox the email-config routes configure and test (and whose Email tab
``POST …/ui-sessions`` opens), that a send's ``command_id`` is followed with
``GET …/messages/{command_id}`` and a sign-in's ``flow_id`` with
``GET /bridge/oauth/flows/{flow_id}``, and that a config's ``ETag`` is the ``If-Match``
of the next save. Schemathesis chains the operations along the same links in its stateful tests.

FastAPI cannot declare links, so ``install`` adds them to the generated document, after the
routes. Each link names its operations by method and path as the routes declare them; building the
document raises ``LinkError`` when one names an operation, a parameter or a value that is not there,
so a renamed route fails loudly instead of leaving a link that leads nowhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

Document = dict[str, Any]
Operation = tuple[str, str]  # method and path, as the route declares them


def _read_save_delete(path: str) -> tuple[Operation, Operation, Operation]:
    return ("get", path), ("put", path), ("delete", path)


_CONFIG = "/bridge/agents/{agent_id}/email-config"
AGENT: Operation = ("put", "/bridge/agents/{agent_id}")
GET_CONFIG, PUT_CONFIG, DELETE_CONFIG = _read_save_delete(_CONFIG)
EVENTS: Operation = ("get", f"{_CONFIG}/events")
TEST: Operation = ("post", f"{_CONFIG}/test")
AUTHORIZE: Operation = ("post", f"{_CONFIG}/authorize")
FLOW: Operation = ("get", "/bridge/oauth/flows/{flow_id}")
SEND: Operation = ("post", "/bridge/agents/{agent_id}/messages")
SEND_STATUS: Operation = ("get", "/bridge/agents/{agent_id}/messages/{command_id}")
UI_SESSION: Operation = ("post", "/bridge/agents/{agent_id}/ui-sessions")
GET_ORG_APPS, PUT_ORG_APPS, DELETE_ORG_APPS = _read_save_delete(
    "/bridge/orgs/{org_id}/email-config"
)
GET_CLIENT_ORG, PUT_CLIENT_ORG, DELETE_CLIENT_ORG = _read_save_delete(
    "/bridge/orgs/{org_id}/client-orgs/{client_org_id}"
)

SAME_AGENT = {"path.agent_id": "$request.path.agent_id"}
SAME_ORG = {"path.org_id": "$request.path.org_id"}
SAME_CLIENT_ORG = {**SAME_ORG, "path.client_org_id": "$request.path.client_org_id"}
THIS_VERSION = {**SAME_AGENT, "header.if-match": "$response.header.ETag"}
AGENTS_ORG = {"path.org_id": "$request.body#/org_id"}
AGENTS_CLIENT_ORG = {**AGENTS_ORG, "path.client_org_id": "$request.body#/client_org_id"}


class LinkError(ValueError):
    """A link names an operation, parameter or value the document does not have."""


@dataclass(frozen=True)
class Link:
    """``target`` takes ``parameters`` (``location.name`` → runtime expression) from an answer
    ``status`` of ``source``."""

    source: Operation
    status: str
    name: str
    target: Operation
    description: str
    parameters: dict[str, str] = field(default_factory=dict)


def _from_agent(name: str, target: Operation, description: str) -> Link:
    return Link(AGENT, "200", name, target, description, SAME_AGENT)


LINKS: tuple[Link, ...] = (
    _from_agent("ReadEmailConfig", GET_CONFIG, "The registered agent's config and status."),
    _from_agent("SaveEmailConfig", PUT_CONFIG, "Give the registered agent a mailbox."),
    _from_agent("DisconnectEmailConfig", DELETE_CONFIG, "Disconnect the agent's mailbox."),
    _from_agent("TestConnection", TEST, "Test the agent's mailbox through a mail-worker."),
    _from_agent("FollowEvents", EVENTS, "Follow the agent's status as it changes."),
    _from_agent("Authorize", AUTHORIZE, "Sign the agent's OAuth mailbox in."),
    _from_agent("SendMessage", SEND, "Send from the agent's mailbox."),
    _from_agent("OpenEmailTab", UI_SESSION, "A link to the agent's Email tab, for a browser."),
    Link(
        AGENT, "200", "ReadOrgApps", GET_ORG_APPS, "The OAuth apps the agent's org shares.",
        AGENTS_ORG,
    ),
    Link(
        AGENT, "200", "SetOrgApps", PUT_ORG_APPS, "Share OAuth apps with the agent's org.",
        AGENTS_ORG,
    ),
    Link(
        AGENT, "200", "SetClientOrg", PUT_CLIENT_ORG, "Restrict the agent's client org.",
        AGENTS_CLIENT_ORG,
    ),
    Link(
        GET_CONFIG, "200", "SaveThisVersion", PUT_CONFIG,
        "Save over the version just read; 412 if another save came first.", THIS_VERSION,
    ),
    Link(
        GET_CONFIG, "200", "DisconnectThisVersion", DELETE_CONFIG,
        "Disconnect the version just read; 412 if another save came first.", THIS_VERSION,
    ),
    Link(PUT_CONFIG, "200", "ReadSaved", GET_CONFIG, "The config as saved.", SAME_AGENT),
    Link(PUT_CONFIG, "200", "TestSaved", TEST, "Test the saved mailbox.", SAME_AGENT),
    Link(PUT_CONFIG, "200", "SendFromSaved", SEND, "Send from the saved mailbox.", SAME_AGENT),
    Link(
        PUT_CONFIG, "200", "AuthorizeSaved", AUTHORIZE,
        "Sign in to the saved Microsoft or Google mailbox.", SAME_AGENT,
    ),
    Link(
        AUTHORIZE, "200", "FollowSignIn", FLOW, "Where the sign-in stands.",
        {"path.flow_id": "$response.body#/flow_id"},
    ),
    Link(
        PUT_CONFIG, "200", "SaveAgain", PUT_CONFIG,
        "Save over the version just saved.", THIS_VERSION,
    ),
    Link(
        PUT_CONFIG, "200", "DisconnectSaved", DELETE_CONFIG,
        "Disconnect the version just saved.", THIS_VERSION,
    ),
    Link(TEST, "200", "ReadTested", GET_CONFIG, "The status the test left.", SAME_AGENT),
    Link(DELETE_CONFIG, "200", "ReadDisconnected", GET_CONFIG, "Now `not_connected`.", SAME_AGENT),
    Link(
        SEND, "202", "FollowSend", SEND_STATUS, "Where the send stands.",
        {**SAME_AGENT, "path.command_id": "$response.body#/command_id"},
    ),
    Link(PUT_ORG_APPS, "200", "ReadOrgApps", GET_ORG_APPS, "The apps as stored.", SAME_ORG),
    Link(PUT_ORG_APPS, "200", "RemoveOrgApps", DELETE_ORG_APPS, "Remove the apps.", SAME_ORG),
    Link(
        PUT_CLIENT_ORG, "200", "ReadClientOrg", GET_CLIENT_ORG, "The client org as stored.",
        SAME_CLIENT_ORG,
    ),
    Link(
        PUT_CLIENT_ORG, "200", "DeleteClientOrg", DELETE_CLIENT_ORG, "Delete the client org.",
        SAME_CLIENT_ORG,
    ),
)  # fmt: skip


def install(app: FastAPI) -> None:
    """Add ``LINKS`` to the document ``app.openapi`` builds, once, as it is built."""
    generate = app.openapi

    def openapi() -> Document:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        add_links(document, LINKS)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def add_links(document: Document, links: tuple[Link, ...]) -> None:
    errors = [error for link in links for error in _errors(document, link)]
    if errors:
        raise LinkError("OpenAPI links that lead nowhere:\n" + "\n".join(errors))
    for link in links:
        answer = _operation(document, link.source)["responses"][link.status]
        answer.setdefault("links", {})[link.name] = {
            "operationId": _operation(document, link.target)["operationId"],
            "parameters": dict(link.parameters),
            "description": link.description,
        }


def _errors(document: Document, link: Link) -> Iterator[str]:
    where = f"{link.name} ({' '.join(link.source).upper()} {link.status})"
    source, target = _operation(document, link.source), _operation(document, link.target)
    for method_path, operation in ((link.source, source), (link.target, target)):
        if operation is None:
            yield f"{where}: no operation {' '.join(method_path).upper()}"
    if source is None or target is None:
        return
    if link.status not in source.get("responses", {}):
        yield f"{where}: {link.source[1]} does not answer {link.status}"
        return
    for qualified, expression in link.parameters.items():
        if not _has_parameter(target, qualified):
            yield f"{where}: {link.target[1]} has no parameter {qualified}"
        if not _resolvable(document, source, link.status, expression):
            yield f"{where}: {expression} names nothing {link.source[1]} has"


def _operation(document: Document, method_path: Operation) -> Any:
    method, path = method_path
    return document.get("paths", {}).get(path, {}).get(method)


def _has_parameter(operation: Document, qualified: str) -> bool:
    location, _, name = qualified.partition(".")
    return any(
        p["in"] == location and p["name"].lower() == name.lower()
        for p in operation.get("parameters", [])
    )


def _resolvable(document: Document, source: Document, status: str, expression: str) -> bool:
    """Whether a runtime expression names a parameter, body field or header the source has."""
    kind, _, rest = expression.partition(".")
    if kind == "$request" and rest.startswith("body#/"):
        body = source.get("requestBody", {}).get("content", {}).get("application/json", {})
        return rest.removeprefix("body#/") in _properties(document, body.get("schema", {}))
    if kind == "$request":
        return _has_parameter(source, rest)
    answer = source["responses"][status]
    if kind == "$response" and rest.startswith("header."):
        headers = {name.lower() for name in answer.get("headers", {})}
        return rest.removeprefix("header.").lower() in headers
    if kind == "$response" and rest.startswith("body#/"):
        body = answer.get("content", {}).get("application/json", {})
        return rest.removeprefix("body#/") in _properties(document, body.get("schema", {}))
    return False


def _properties(document: Document, schema: Document) -> set[str]:
    """The top-level property names of a schema, through ``$ref`` and ``anyOf``/``oneOf``."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return _properties(document, document["components"]["schemas"][name])
    names = set(schema.get("properties", {}))
    for branch in (*schema.get("anyOf", []), *schema.get("oneOf", []), *schema.get("allOf", [])):
        names |= _properties(document, branch)
    return names
