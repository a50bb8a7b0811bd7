"""The one event-order rule of a series: an event older than the last one applied is rejected."""

from __future__ import annotations

from datetime import date
from typing import TypeVar

from foundation.errors import EventOrderError

#: event times: ms since the epoch, or a calendar day for daily series
When = TypeVar("When", int, date)


def _show(t: int | date) -> str:
    return t.isoformat() if isinstance(t, date) else f"t_ms={t}"


def check_newer(what: str, t: When, last: When | None, *, allow_equal: bool = False) -> None:
    """EventOrderError unless ``t`` is after ``last``, the time of the last event applied to the
    series (None: none yet); with ``allow_equal`` the same time again is accepted too.

    ``what`` names the event in the message, e.g. "price" or "anchor event".
    """
    if last is None or t > last or (allow_equal and t == last):
        return
    relation = "a duplicate of" if t == last else "older than"
    rule = "older than" if allow_equal else "not newer than"
    raise EventOrderError(
        f"{what} at {_show(t)} is {relation} the last one applied ({_show(last)}); a series "
        f"takes no event {rule} the last one, so drop it (dead-letter) or replay the series "
        "from the start"
    )
