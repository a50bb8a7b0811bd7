"""Validate raw input bytes against a record's declaration; every failure says why.

Hand-written (not a generic JSON Schema engine) because it runs once per tick; a test checks
that it agrees with the generated JSON Schema files.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

from altseason.errors import SchemaError
from schemas.jsonschema import field_json_types
from schemas.records import SCHEMA_VERSION, Event

E = TypeVar("E", bound=Event)

#: event times outside [EARLIEST, now + MAX_FUTURE] are rejected as implausible
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE_SECONDS = 24 * 3600
MAX_PAYLOAD_BYTES = 1 << 20


#: RFC 3339 date-time (what JSON Schema's "date-time" format means), stricter than fromisoformat
RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?",
    re.ASCII,
)


def parse_utc(value: str) -> datetime:
    """Parse an RFC 3339 time that states UTC (Z or +00:00); SchemaError otherwise."""
    match = RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise SchemaError(f"event time {value!r} is not an RFC 3339 (ISO 8601) date-time")
    if match["offset"] is None:
        raise SchemaError(f"event time {value!r} must be in UTC (end it with Z)")
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise SchemaError(f"event time {value!r} is not ISO 8601") from None
    if parsed.tzinfo is None or parsed.utcoffset() != UTC.utcoffset(None):
        raise SchemaError(f"event time {value!r} must be in UTC (end it with Z)")
    return parsed


def iso_utc(moment: datetime) -> str:
    """The canonical ISO 8601 form used on every topic: millisecond precision, Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


Check = tuple[str, tuple[type, ...], bool, bool, dict[str, Any]]


@cache
def _checks(record: type[Event]) -> list[Check]:
    """(field, accepted Python types, nullable, required, constraints) of each field."""
    checks: list[Check] = []
    pytypes: dict[str, tuple[type, ...]] = {
        "string": (str,), "number": (int, float), "integer": (int,), "object": (dict,),
        "boolean": (bool,),
    }
    for name, annotation in record._options.fields.items():
        kinds, nullable = field_json_types(annotation)
        required = name not in record._options.defaults
        checks.append((name, pytypes[kinds[0]], nullable, required,
                       record.constraints.get(name, {})))
    return checks


def _check_value(name: str, value: Any, rules: dict[str, Any]) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise SchemaError(f"field {name} is {value}, not a finite number")
    if "enum" in rules and value not in rules["enum"]:
        raise SchemaError(f"field {name} is {value!r}, not one of {rules['enum']}")
    if "const" in rules and value != rules["const"]:
        raise SchemaError(f"field {name} is {value!r}; this version reads {rules['const']!r}")
    if "exclusiveMinimum" in rules and not value > rules["exclusiveMinimum"]:
        raise SchemaError(f"field {name} is {value!r}; it must be > {rules['exclusiveMinimum']}")
    if "minimum" in rules and not value >= rules["minimum"]:
        raise SchemaError(f"field {name} is {value!r}; it must be >= {rules['minimum']}")
    if "maximum" in rules and not value <= rules["maximum"]:
        raise SchemaError(f"field {name} is {value!r}; it must be <= {rules['maximum']}")
    if "minLength" in rules and len(value) < rules["minLength"]:
        raise SchemaError(f"field {name} is empty")
    # JSON Schema patterns are ECMA regexes: "$" does not match before a final newline
    if "pattern" in rules and not re.search(rules["pattern"].replace("$", r"\Z"), value):
        raise SchemaError(f"field {name} is {value!r}, not of the form {rules['pattern']}")
    if rules.get("format") == "date-time":
        moment = parse_utc(value)
        now = datetime.now(UTC)
        if moment < EARLIEST_EVENT_TIME or (moment - now).total_seconds() > MAX_FUTURE_SECONDS:
            raise SchemaError(f"field {name} is {value}, implausibly far in the past or future")


def decode_event(record: type[E], raw: bytes | str | None) -> E:
    """Parse and validate one JSON event; raises SchemaError with the reason."""
    if raw is None:
        raise SchemaError("empty message (no value)")
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise SchemaError(f"message of {len(raw)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SchemaError(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SchemaError(f"expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"schema_version {version!r} is not supported (this is v{SCHEMA_VERSION})"
        )
    values: dict[str, Any] = {}
    for name, pytypes, nullable, required, rules in _checks(record):  # type: ignore[arg-type]
        if name not in data:
            if required:
                raise SchemaError(f"missing field {name}")
            continue
        value = data[name]
        if value is None:
            if not nullable:
                raise SchemaError(f"field {name} is null")
            values[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, pytypes):
            raise SchemaError(f"field {name} is {type(value).__name__}, expected "
                              f"{'/'.join(t.__name__ for t in pytypes)}")
        _check_value(name, value, rules)
        values[name] = float(value) if pytypes == (int, float) else value  # type: ignore[arg-type]
    return record(**values)
