"""Building signals: deterministic ids, and regime bands with hysteresis (pure functions)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.decode import iso_utc
from schemas.records import Signal

#: namespace of signal ids: uuid5(SIGNAL_NAMESPACE, "type|subject|event_time")
SIGNAL_NAMESPACE = uuid.UUID("6f1c2f0e-8a9b-5d47-9b1e-2a7c3e5d4f60")


def signal_id(type_: str, subject: str, event_time: str) -> str:
    """The same (type, subject, event time) always gives the same id, so replays dedupe."""
    return str(uuid.uuid5(SIGNAL_NAMESPACE, f"{type_}|{subject}|{event_time}"))


def make_signal(
    type_: str,
    subject: str,
    event_time: str,
    severity: str,
    value: float,
    message: str,
    evidence: dict[str, Any],
    emitted_at: datetime | None = None,
) -> Signal:
    return Signal(
        id=signal_id(type_, subject, event_time),
        type=type_,
        subject=subject,
        event_time=event_time,
        emitted_at=iso_utc(emitted_at or datetime.now(UTC)),
        severity=severity,
        value=float(value),
        message=message,
        evidence=evidence,
    )


def correlation_band(
    value: float, previous: str | None, low: float, high: float, hysteresis: float
) -> str:
    """Classify a correlation as "decoupled", "neutral" or "coupled", with hysteresis.

    A value enters "coupled" at >= high and leaves it only below high - hysteresis (likewise
    "decoupled" at <= low, left only above low + hysteresis), so a value hovering at a
    threshold does not flip the regime back and forth.
    """
    if previous == "coupled" and value >= high - hysteresis:
        return "coupled"
    if previous == "decoupled" and value <= low + hysteresis:
        return "decoupled"
    if value >= high:
        return "coupled"
    if value <= low:
        return "decoupled"
    return "neutral"
