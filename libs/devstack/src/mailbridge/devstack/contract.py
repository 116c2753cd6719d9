"""The API documents of the contract: config-api's OpenAPI and each service's AsyncAPI.

``python -m mailbridge.devstack.contract write contract`` (``make schemas``) writes
``contract/openapi.json`` and ``contract/asyncapi/<service>.json``. Both come from the code without
starting anything: the FastAPI app is created but never run, and each service's broker gets its
subscribers registered but never connects.

An OpenAPI change is compatible when a client written against the old document still works: no
path or method removed, no response status removed, no request field or parameter newly required
(request bodies are compared with the message schemas' rule, ``schemas.incompatibilities``).
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI
from opentelemetry.sdk.trace import TracerProvider

from mailbridge.config_api.app import create_app
from mailbridge.config_api.bootstrap import SERVICE as CONFIG_API
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.mail_worker.bootstrap import SERVICE as MAIL_WORKER
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.oauth_broker.bootstrap import SERVICE as OAUTH_BROKER
from mailbridge.oauth_broker.settings import OAuthBrokerSettings
from mailbridge.policy.bootstrap import SERVICE as POLICY
from mailbridge.policy.settings import PolicySettings
from mailbridge.shared.schemas import Schema, incompatibilities, render
from mailbridge.shared.service import Blueprint, unconnected
from mailbridge.shared.settings import ServiceSettings

OPENAPI = "openapi.json"
SERVICES = ("config-api", "oauth-broker", "mail-worker", "policy")  # the AsyncAPI documents
VERSION = "1.0.0"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
BLUEPRINTS: dict[str, tuple[Blueprint[Any, object], type[ServiceSettings]]] = {
    "config-api": (CONFIG_API, ConfigApiSettings),
    "mail-worker": (MAIL_WORKER, MailWorkerSettings),
    "oauth-broker": (OAUTH_BROKER, OAuthBrokerSettings),
    "policy": (POLICY, PolicySettings),
}


def openapi() -> Schema:
    """config-api's OpenAPI document; the app's container is never made."""

    async def never_started() -> NoReturn:
        raise RuntimeError("the contract generator does not start config-api")

    return copy.deepcopy(create_app(never_started).openapi())


def asyncapi(service: str) -> Schema:
    """A service's AsyncAPI 3.0 document, from its broker with every subscriber registered."""
    spec = AsyncAPI(
        _broker_of(service),
        title=f"mailbridge {service}",
        version=VERSION,
        description=f"The NATS subjects {service} serves (SPEC §5).",
    )
    document: Schema = json.loads(spec.to_specification().to_json())
    return document


def generate() -> dict[str, Schema]:
    """Every API document, by its path under the contract directory."""
    documents = {OPENAPI: openapi()}
    documents.update({f"asyncapi/{service}.json": asyncapi(service) for service in SERVICES})
    return documents


def write(directory: Path) -> list[Path]:
    written = []
    for name, document in generate().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(document))
        written.append(path)
    return written


def _broker_of(service: str) -> NatsBroker:
    """The service's broker with every subscriber registered, built by its own blueprint on
    unconnected resources. The settings are the defaults (``model_construct`` reads no
    environment: the document must not depend on it); nothing here needs the required ones."""
    provider = TracerProvider()  # not the global one: generating has no side effects
    blueprint, settings_class = BLUEPRINTS[service]
    return unconnected(blueprint, settings_class.model_construct(), provider).broker


def openapi_incompatibilities(old: Schema, new: Schema) -> list[str]:
    """What in ``new`` would break a client written against ``old``."""
    problems: list[str] = []
    new_operations = dict(_operations(new))
    for key, old_operation in _operations(old):
        new_operation = new_operations.get(key)
        if new_operation is None:
            problems.append(f"{key}: removed")
            continue
        for status in old_operation.get("responses", {}):
            if status not in new_operation.get("responses", {}):
                problems.append(f"{key}: response {status} removed")
        old_required = _required_parameters(old_operation)
        for name in sorted(_required_parameters(new_operation) - old_required):
            problems.append(f"{key}: parameter {name} became required")
        problems += _body_incompatibilities(key, old, old_operation, new, new_operation)
    return problems


def _operations(document: Schema) -> Iterator[tuple[str, Schema]]:
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def _required_parameters(operation: Schema) -> set[str]:
    return {f"{p['in']}:{p['name']}" for p in operation.get("parameters", []) if p.get("required")}


def _body_incompatibilities(
    key: str, old: Schema, old_operation: Schema, new: Schema, new_operation: Schema
) -> list[str]:
    old_body = old_operation.get("requestBody")
    new_body = new_operation.get("requestBody")
    if new_body is None:
        return []
    if old_body is None:
        return [f"{key}: a request body became required"] if new_body.get("required") else []
    problems: list[str] = []
    for media_type, old_content in old_body.get("content", {}).items():
        new_content = new_body.get("content", {}).get(media_type)
        if new_content is None:
            problems.append(f"{key}: request body {media_type} removed")
            continue
        problems += incompatibilities(
            _as_json_schema(old, old_content.get("schema", {})),
            _as_json_schema(new, new_content.get("schema", {})),
            f"{key} request ",
        )
    return problems


def _as_json_schema(document: Schema, schema: Schema) -> Schema:
    """A request body's schema with the components it reaches as ``$defs``, the shape
    ``incompatibilities`` walks (the body itself under ``body``)."""
    components: dict[str, Schema] = document.get("components", {}).get("schemas", {})
    top = _ref_name(schema)
    reached = {name: components[name] for name in _reachable(schema, components) if name != top}
    body = components.get(top, {}) if top else schema
    return {"$defs": {"body": body, **reached}}


def _ref_name(schema: Schema) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _reachable(schema: Any, components: dict[str, Schema]) -> list[str]:
    found: list[str] = []
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            name = _ref_name(node)
            if name is not None and name not in found and name in components:
                found.append(name)
                pending.append(components[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m mailbridge.devstack.contract")
    parser.add_argument("command", choices=["write"])
    parser.add_argument("directory", type=Path, help="the contract directory, e.g. contract")
    args = parser.parse_args()
    write(args.directory)


if __name__ == "__main__":
    main()
