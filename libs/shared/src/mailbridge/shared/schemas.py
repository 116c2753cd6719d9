"""JSON Schemas of every contract message, and the rule for what counts as a compatible change.

``python -m mailbridge.shared.schemas write DIR`` writes one file per message (``make schemas``).
A change is compatible when every old payload still validates and every new payload is still read
by old readers: no property removed or retyped, no new required property.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mailbridge.shared.messages import ALL_MESSAGES, SUBJECT_MESSAGES, Message

Schema = dict[str, Any]


def file_name(model: type[BaseModel]) -> str:
    if issubclass(model, Message) and model in SUBJECT_MESSAGES:
        return model.subscription().replace(".*", "") + ".json"
    return f"reply.{model.__name__}.json"


def generate() -> dict[str, Schema]:
    schemas: dict[str, Schema] = {}
    for model in ALL_MESSAGES:
        schema = model.model_json_schema(by_alias=True, mode="serialization")
        if issubclass(model, Message):
            schema["x-subject"] = model.subject_template
        schemas[file_name(model)] = schema
    return schemas


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate().items():
        path = directory / name
        path.write_text(render(schema))
        written.append(path)
    return written


def incompatibilities(old: Schema, new: Schema, where: str = "") -> list[str]:
    """What in ``new`` would break a producer or consumer written against ``old``."""
    problems: list[str] = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            problems.append(f"{where}{name}: removed")
        elif _type_of(old_prop) != _type_of(new_props[name]):
            problems.append(f"{where}{name}: type changed")
    for name in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{where}{name}: became required")
    for name, old_def in old.get("$defs", {}).items():
        if name in new.get("$defs", {}):
            problems += incompatibilities(old_def, new["$defs"][name], f"{where}{name}.")
    return problems


def _type_of(prop: Schema) -> Any:
    if "anyOf" in prop:
        return sorted(json.dumps(_type_of(p), sort_keys=True) for p in prop["anyOf"])
    return prop.get("type") or prop.get("$ref") or prop.get("const")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m mailbridge.shared.schemas")
    parser.add_argument("command", choices=["write"])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args()
    write(args.directory)


if __name__ == "__main__":
    main()
