"""The committed OpenAPI and AsyncAPI documents match the code, the OpenAPI never broke a client in
its history, every error is documented as problem+json, and every documented example is valid."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from mailbridge.config_api.app import create_app
from mailbridge.devstack import contract
from tests.contract.test_message_schemas import _history

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_DIR = ROOT / "contract"
GENERATED = contract.generate()
OPENAPI = GENERATED[contract.OPENAPI]
PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetails"}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_the_committed_document_matches_the_code(name: str) -> None:
    committed = CONTRACT_DIR / name
    assert committed.exists(), f"contract/{name} is not committed: run `make schemas`"
    old = json.loads(committed.read_text())
    if name == contract.OPENAPI:
        breaking = contract.openapi_incompatibilities(old, OPENAPI)
        assert not breaking, f"the HTTP API changed incompatibly: {breaking}"
    assert old == GENERATED[name], f"contract/{name} drifted from the code: run `make schemas`"


def test_no_committed_asyncapi_document_is_left_without_a_service() -> None:
    committed = {f"asyncapi/{p.name}" for p in (CONTRACT_DIR / "asyncapi").glob("*.json")}
    orphans = committed - set(GENERATED)
    assert not orphans, f"AsyncAPI documents of no service: {orphans}; run `make schemas`"


def test_every_committed_version_of_the_openapi_grew_compatibly() -> None:
    versions = [json.loads(text) for text in reversed(_history(CONTRACT_DIR / contract.OPENAPI))]
    for older, newer in itertools.pairwise(versions):
        breaking = contract.openapi_incompatibilities(older, newer)
        assert not breaking, f"openapi.json broke in its history: {breaking}"


def test_the_openapi_rule_catches_what_breaks_a_client() -> None:
    old = _document(
        {"/a": {"get": {"responses": {"200": {}, "404": {}}}, "delete": {"responses": {}}}},
        body={"properties": {"x": {"type": "string"}}, "required": []},
    )
    new = _document(
        {"/a": {"get": {"responses": {"200": {}}}}},
        body={"properties": {"x": {"type": "string"}, "y": {"type": "string"}}, "required": ["y"]},
        parameters=[{"name": "q", "in": "query", "required": True}],
    )
    assert contract.openapi_incompatibilities(old, new) == [
        "GET /a: response 404 removed",
        "DELETE /a: removed",
        "PUT /b: parameter query:q became required",
        "PUT /b request body.y: became required",
    ]


def test_the_openapi_rule_allows_what_a_client_does_not_notice() -> None:
    old = _document({"/a": {"get": {"responses": {"200": {}}}}}, body={"properties": {}})
    new = _document(
        {"/a": {"get": {"responses": {"200": {}, "404": {}}}}, "/c": {"get": {"responses": {}}}},
        body={"properties": {"y": {"type": "string"}}},
        parameters=[{"name": "q", "in": "query", "required": False}],
    )
    assert contract.openapi_incompatibilities(old, new) == []


def _document(
    paths: dict[str, Any], *, body: dict[str, Any], parameters: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Body"}}}
    put = {"requestBody": {"content": content}, "responses": {}, "parameters": parameters or []}
    return {"paths": {**paths, "/b": {"put": put}}, "components": {"schemas": {"Body": body}}}


def _responses() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                yield f"{method.upper()} {path}", status, response


def test_every_error_is_a_problem_details_in_problem_json() -> None:
    errors = [(op, status, r) for op, status, r in _responses() if status[0] in "45"]
    wrong = [
        f"{op} {status}"
        for op, status, response in errors
        if list(response["content"]) != [PROBLEM_JSON]
        or response["content"][PROBLEM_JSON]["schema"] != PROBLEM_REF
    ]
    # readiness answers its checks, not a problem, when it is not ready
    assert errors and wrong == ["GET /readyz 503"], f"errors not as ProblemDetails: {wrong}"


def test_every_bridge_route_documents_401_and_its_2xx_has_examples() -> None:
    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            if path.startswith("/bridge"):
                assert "401" in responses, f"{method.upper()} {path} does not document 401"
            successes = [r for status, r in responses.items() if status.startswith("2")]
            assert all(
                "example" in media or "examples" in media
                for success in successes
                for media in success.get("content", {}).values()  # a 204 has no body
            ), f"{method.upper()} {path}: a 2xx answer without an example"


def _examples() -> Iterator[Any]:
    for operation, status, response in _responses():
        for media_type, media in response.get("content", {}).items():
            where = f"{operation} {status} {media_type}"
            if "example" in media:
                yield pytest.param(media.get("schema", {}), media["example"], id=where)
            for name, example in media.get("examples", {}).items():
                yield pytest.param(media.get("schema", {}), example["value"], id=f"{where} {name}")


@pytest.mark.parametrize(("schema", "example"), list(_examples()))
def test_every_documented_example_matches_its_schema(schema: dict[str, Any], example: Any) -> None:
    if not schema:  # text/event-stream: a stream, not a JSON document
        assert isinstance(example, str) and example.startswith("event: ")
        return
    validator = jsonschema.Draft202012Validator({**schema, "components": OPENAPI["components"]})
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(example)]
    assert not problems, f"the example does not match its schema: {problems}"


async def test_the_app_serves_the_same_document_and_the_docs_page() -> None:
    transport = httpx.ASGITransport(app=create_app(_never_started))  # no lifespan: no container
    async with httpx.AsyncClient(transport=transport, base_url="http://config-api") as client:
        served = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert served == OPENAPI
    assert docs.status_code == 200 and "swagger-ui" in docs.text


async def _never_started() -> Any:
    raise AssertionError("the container must not be made")
