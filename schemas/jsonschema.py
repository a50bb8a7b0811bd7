"""Generate the JSON Schema (draft 2020-12) of each record, for consumers in other languages.

``python -m schemas.jsonschema`` rewrites ``schemas/json/``; a test fails when the files
drift from the records.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from schemas.records import SCHEMA_VERSION, Event
from schemas.topics import TOPICS

JSON_DIR = Path(__file__).parent / "json"

_TYPES: dict[Any, str] = {str: "string", float: "number", int: "integer", bool: "boolean",
                          dict: "object"}


def field_json_types(annotation: Any) -> tuple[list[str], bool]:
    """The JSON types of a field's annotation, and whether it may be null."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        kinds, _ = field_json_types(members[0])
        return kinds, True
    annotation = get_origin(annotation) or annotation
    if annotation not in _TYPES:
        raise TypeError(f"no JSON type for {annotation!r}")
    return [_TYPES[annotation]], False


def record_schema(topic: str, record: type[Event]) -> dict[str, Any]:
    """The JSON Schema of one topic's record."""
    fields = record._options.fields
    defaults = record._options.defaults
    properties: dict[str, Any] = {}
    for name, annotation in fields.items():
        kinds, nullable = field_json_types(annotation)
        prop: dict[str, Any] = {"type": kinds + ["null"] if nullable else kinds[0]}
        prop.update(record.constraints.get(name, {}))
        properties[name] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"altseason/{topic}.v{SCHEMA_VERSION}.schema.json",
        "title": f"{record.__name__} (topic {topic})",
        "description": record.description,
        "type": "object",
        "properties": properties,
        "required": [name for name in fields if name not in defaults],
        "additionalProperties": True,
    }


def schema_files() -> dict[str, str]:
    """File name -> JSON text, for every public topic."""
    return {
        f"{spec.name}.v{SCHEMA_VERSION}.schema.json": json.dumps(
            record_schema(spec.name, spec.record), indent=2
        ) + "\n"
        for spec in TOPICS
    }


def write_schema_files(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_files().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schema_files():
        print(path)
