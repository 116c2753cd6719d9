"""docker-compose.yml and deploy/Dockerfile agree with the Compose Specification and with what the
services really read: their pydantic settings classes and their ``python -m`` modules."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from pydantic_settings import BaseSettings

from tests.contract.service_settings import (
    SETTINGS_BY_MODULE,
    misspelt_variables,
    required_variables,
    secret_variables,
    unread_variables,
)

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
# Vendored verbatim from github.com/compose-spec/compose-spec, schema/compose-spec.json
# (commit 00655e2222608fa6eaecdf12ac5195889ca2244a).
COMPOSE_SCHEMA = Path(__file__).with_name("compose-spec.json")


def _load_compose() -> dict[str, Any]:
    # safe_load resolves anchors and `<<` merges, so each service carries its full environment.
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return compose


def _as_list(command: str | list[str] | None) -> list[str]:
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else list(command)


def _environment(service: dict[str, Any]) -> dict[str, str | None]:
    raw = service.get("environment") or {}
    if isinstance(raw, dict):
        return {key: None if value is None else str(value) for key, value in raw.items()}
    pairs = (item.partition("=") for item in raw)
    return {key: value if sep else None for key, sep, value in pairs}


def _dockerfile_instruction(name: str) -> list[str]:
    """The last exec-form (JSON) ``name`` instruction of deploy/Dockerfile."""
    found = re.findall(rf"^{name}\s+(.*)$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert found, f"deploy/Dockerfile has no {name}"
    value = json.loads(found[-1])
    assert isinstance(value, list), f"{name} must be in exec form: {found[-1]}"
    return value


def _builds_service_image(service: dict[str, Any]) -> bool:
    build: str | dict[str, str] | None = service.get("build")
    if build is None:
        return False
    if isinstance(build, str):
        build = {"context": build}
    dockerfile = ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
    return dockerfile.resolve() == DOCKERFILE.resolve()


def _mailbridge_services() -> dict[str, dict[str, Any]]:
    """Compose services built from deploy/Dockerfile, by name."""
    services = _load_compose()["services"]
    return {name: svc for name, svc in services.items() if _builds_service_image(svc)}


def _module_of(service: dict[str, Any]) -> str:
    command = _as_list(service.get("command")) or _dockerfile_instruction("CMD")
    return command[0]


def _settings_of(name: str, service: dict[str, Any]) -> type[BaseSettings]:
    module = _module_of(service)
    assert module in SETTINGS_BY_MODULE, (
        f"{name}: command {module!r} is none of the services {sorted(SETTINGS_BY_MODULE)}"
    )
    return SETTINGS_BY_MODULE[module]


SERVICE_NAMES = sorted(_mailbridge_services())


def test_compose_file_validates_against_the_compose_specification() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator = Draft7Validator(schema)

    errors = sorted(validator.iter_errors(_load_compose()), key=lambda e: list(e.absolute_path))

    assert not errors, "\n".join(
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors
    )


def test_compose_runs_every_service_from_the_one_image() -> None:
    modules = {_module_of(service) for service in _mailbridge_services().values()}

    assert modules == set(SETTINGS_BY_MODULE)


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_mailbridge_variable_is_read_by_the_service(name: str) -> None:
    service = _mailbridge_services()[name]
    settings = _settings_of(name, service)

    unknown = unread_variables(_environment(service), settings)
    near_misses = misspelt_variables(_environment(service), settings)

    assert not unknown, f"{name} sets variables its settings never read: {unknown}"
    assert not near_misses, f"{name} sets misspelt variables: {near_misses}"


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_required_setting_is_set(name: str) -> None:
    service = _mailbridge_services()[name]
    environment = _environment(service)

    missing = [
        var for var in required_variables(_settings_of(name, service)) if not environment.get(var)
    ]

    assert not missing, f"{name} starts without required settings: {missing}"


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_secret_settings_come_from_the_environment_not_the_file(name: str) -> None:
    service = _mailbridge_services()[name]
    environment = _environment(service)

    secrets = secret_variables(_settings_of(name, service))
    values = {var: environment.get(var) or "" for var in secrets}
    committed = [var for var, value in values.items() if value and "${" not in value]

    assert not committed, f"{name} commits secret values instead of interpolating them: {committed}"


def test_dockerfile_entrypoint_runs_a_module() -> None:
    entrypoint = _dockerfile_instruction("ENTRYPOINT")

    assert Path(entrypoint[0]).name.startswith("python")
    assert entrypoint[1:] == ["-m"]


@pytest.mark.parametrize("name", ["<Dockerfile CMD>", *SERVICE_NAMES])
def test_each_command_names_a_runnable_module(name: str) -> None:
    if name == "<Dockerfile CMD>":
        command = _dockerfile_instruction("CMD")
    else:
        service = _mailbridge_services()[name]
        assert "entrypoint" not in service, f"{name} overrides the image's ENTRYPOINT"
        command = _as_list(service.get("command")) or _dockerfile_instruction("CMD")
    module = command[0]

    assert importlib.util.find_spec(module) is not None, f"{name}: no module {module!r}"
    assert importlib.util.find_spec(f"{module}.__main__") is not None, (
        f"{name}: {module!r} cannot run with python -m (no __main__)"
    )
