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

from foundation.errors import SchemaError
from schemas.jsonschema import field_json_types
from schemas.records import SCHEMA_VERSION, Event

E = TypeVar("E", bound=Event)

#: event times outside [EARLIEST, now + MAX_FUTURE] are rejected as implausible
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE_SECONDS = 24 * 3600
MAX_PAYLOAD_BYTES = 1 << 20
#: integers must fit in 64 bits and objects nest at most this deep: Faust's JSON serializer
#: (orjson) refuses larger integers and deeper objects (from 255 levels)
INT64 = (-(1 << 63), (1 << 63) - 1)
MAX_DEPTH = 64
#: numbers must be 0 or of a magnitude within these bounds: a price of 5e-324 is positive and
#: finite, but the next real price divided by it is not (a return of inf stops the pair
#: agents); none of the markets altseason reads is anywhere near them
MIN_MAGNITUDE, MAX_MAGNITUDE = 1e-100, 1e100
#: a value quoted in a reason is cut to this many characters: the reason travels in a dead
#: letter, which must stay far below the broker's message size limit
SHOWN_CHARS = 120


#: RFC 3339 date-time (what JSON Schema's "date-time" format means), stricter than fromisoformat
RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?",
    re.ASCII,
)


def shown(value: Any) -> str:
    """``repr(value)`` for a reason, cut to SHOWN_CHARS (a hostile value may be 1 MB long)."""
    text = repr(value)
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"


def parse_utc(value: str) -> datetime:
    """Parse an RFC 3339 time that states UTC (Z or +00:00); SchemaError otherwise."""
    match = RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise SchemaError(f"event time {shown(value)} is not an RFC 3339 (ISO 8601) date-time")
    if match["offset"] is None:
        raise SchemaError(f"event time {shown(value)} must be in UTC (end it with Z)")
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise SchemaError(f"event time {shown(value)} is not ISO 8601") from None
    if parsed.tzinfo is None or parsed.utcoffset() != UTC.utcoffset(None):
        raise SchemaError(f"event time {shown(value)} must be in UTC (end it with Z)")
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


def _check_json(name: str, value: Any, depth: int = 0) -> None:
    """What the worker could not send on: text with a lone surrogate (not UTF-8), an integer
    beyond 64 bits, an object nested deeper than MAX_DEPTH (each crashes the serializer)."""
    if depth > MAX_DEPTH:
        raise SchemaError(f"field {name} is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise SchemaError(f"field {name} is not valid Unicode text (a lone surrogate "
                                  "such as \\ud800)") from None
    elif isinstance(value, int) and not isinstance(value, bool):
        if not INT64[0] <= value <= INT64[1]:
            raise SchemaError(f"field {name} is an integer beyond 64 bits")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json(name, key, depth + 1)
            _check_json(name, item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(name, item, depth + 1)


def _check_value(name: str, value: Any, rules: dict[str, Any]) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise SchemaError(f"field {name} is {value}, not a finite number")
    _check_json(name, value)
    if "enum" in rules and value not in rules["enum"]:
        raise SchemaError(f"field {name} is {shown(value)}, not one of {rules['enum']}")
    if "const" in rules and value != rules["const"]:
        raise SchemaError(f"field {name} is {shown(value)}; this version reads "
                          f"{rules['const']!r}")
    if "exclusiveMinimum" in rules and not value > rules["exclusiveMinimum"]:
        raise SchemaError(f"field {name} is {shown(value)}; it must be > "
                          f"{rules['exclusiveMinimum']}")
    if "minimum" in rules and not value >= rules["minimum"]:
        raise SchemaError(f"field {name} is {shown(value)}; it must be >= {rules['minimum']}")
    if "maximum" in rules and not value <= rules["maximum"]:
        raise SchemaError(f"field {name} is {shown(value)}; it must be <= {rules['maximum']}")
    if "minLength" in rules and len(value) < rules["minLength"]:
        raise SchemaError(f"field {name} is empty")
    # JSON Schema patterns are ECMA regexes: "$" does not match before a final newline
    if "pattern" in rules and not re.search(rules["pattern"].replace("$", r"\Z"), value):
        raise SchemaError(f"field {name} is {shown(value)}, not of the form {rules['pattern']}")
    if rules.get("format") == "date-time":
        try:
            moment = parse_utc(value)
        except SchemaError as exc:
            raise SchemaError(f"field {name}: {exc}") from None
        now = datetime.now(UTC)
        if moment < EARLIEST_EVENT_TIME or (moment - now).total_seconds() > MAX_FUTURE_SECONDS:
            text = value if len(value) <= SHOWN_CHARS else shown(value)
            raise SchemaError(f"field {name} is {text}, implausibly far in the past or future")


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
    except RecursionError:
        raise SchemaError("malformed JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise SchemaError(f"expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"schema_version {shown(version)} is not supported (this is v{SCHEMA_VERSION})"
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
        _check_value(name, value, rules)  # first: an integer beyond 64 bits is refused there
        if pytypes == (int, float):
            number = float(value)  # type: ignore[arg-type]
            if number and not MIN_MAGNITUDE <= abs(number) <= MAX_MAGNITUDE:
                raise SchemaError(f"field {name} is {shown(value)}, outside the magnitudes "
                                  f"altseason computes with ({MIN_MAGNITUDE:g} .. "
                                  f"{MAX_MAGNITUDE:g}, or 0)")
        values[name] = number if pytypes == (int, float) else value
    return record(**values)
