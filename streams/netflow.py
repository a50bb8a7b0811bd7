"""Exchange netflows of a token over event-time windows (pure, no I/O).

Inflow (tokens sent to an exchange) is coins made ready to sell; outflow (withdrawals) is
coins taken off to hold. ``netflow = inflow - outflow``: negative is accumulation, positive is
distribution. ``RollingNetflow`` keeps, per window, the observations of the last ``w`` ms,
half-open ``(t - w, t]`` like pandas' ``rolling("1D")``, in a deque with running sums of inflow
and outflow. Every update evicts from the left, so the cost is amortised O(1).

Flows span many orders of magnitude (one whale transfer next to thousands of small ones), so a
plain running sum would keep the whale's rounding error after the whale has left the window.
The sums are therefore compensated (Neumaier: the low bits lost by each addition or subtraction
are kept in a second term), recomputed exactly (``math.fsum``, both terms) once a window has
evicted as many observations as it holds, and reset to 0 when it empties.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from schemas.records import Signal
from streams.order import check_newer
from streams.signals import make_signal

DAY_MS = 86_400_000


def _add_compensated(total: float, comp: float, x: float) -> tuple[float, float]:
    """Neumaier step: ``total + comp`` gains ``x``; ``comp`` keeps what ``total`` rounded off."""
    t = total + x
    if abs(total) >= abs(x):
        comp += (total - t) + x
    else:
        comp += (x - t) + total
    return t, comp


def _exact_sum(values: list[float]) -> tuple[float, float]:
    """The exact sum of ``values`` as the rounded sum and what rounding left off."""
    total = math.fsum(values)
    return total, math.fsum([*values, -total])


class _Window:
    """Observations (t_ms, inflow, outflow) of one window and their compensated sums."""

    def __init__(self, length_ms: int) -> None:
        self.length_ms = length_ms
        self.obs: deque[tuple[int, float, float]] = deque()
        # [inflow sum, its compensation, outflow sum, its compensation]
        self.sums = [0.0, 0.0, 0.0, 0.0]
        self.evicted = 0  # evictions since the sums were last recomputed exactly

    @property
    def inflow(self) -> float:
        return self.sums[0] + self.sums[1]

    @property
    def outflow(self) -> float:
        return self.sums[2] + self.sums[3]

    def _accumulate(self, inflow: float, outflow: float) -> None:
        s = self.sums
        s[0], s[1] = _add_compensated(s[0], s[1], inflow)
        s[2], s[3] = _add_compensated(s[2], s[3], outflow)

    def add(self, t_ms: int, inflow: float, outflow: float) -> None:
        self.obs.append((t_ms, inflow, outflow))
        self._accumulate(inflow, outflow)

    def evict(self, t_ms: int) -> None:
        cutoff = t_ms - self.length_ms
        while self.obs and self.obs[0][0] <= cutoff:
            _, inflow, outflow = self.obs.popleft()
            self._accumulate(-inflow, -outflow)
            self.evicted += 1
        if not self.obs:
            self.sums = [0.0, 0.0, 0.0, 0.0]
            self.evicted = 0
        elif self.evicted >= len(self.obs):
            self.sums = [
                *_exact_sum([o[1] for o in self.obs]), *_exact_sum([o[2] for o in self.obs])
            ]
            self.evicted = 0


class RollingNetflow:
    """Inflow, outflow and netflow sums of one (exchange, token) over several time windows.

    ``windows`` maps a name to a length in ms, e.g. ``{"1d": DAY_MS, "7d": 7 * DAY_MS}``.
    Observations with the same t_ms are all counted (several transfers in one block).
    """

    def __init__(self, windows: Mapping[str, int]) -> None:
        if not windows:
            raise ValueError("at least one window is needed")
        for name, length in windows.items():
            if isinstance(length, bool) or not isinstance(length, int) or length < 1:
                raise ValueError(f"window {name!r} must be an int of ms >= 1, got {length!r}")
        self._windows = {name: _Window(length) for name, length in windows.items()}
        self.last_t_ms: int | None = None

    @property
    def windows(self) -> dict[str, int]:
        """Window name -> length in ms."""
        return {name: w.length_ms for name, w in self._windows.items()}

    def inflow(self, window: str) -> float:
        return self._windows[window].inflow

    def outflow(self, window: str) -> float:
        return self._windows[window].outflow

    def netflow(self, window: str) -> float:
        w = self._windows[window]
        return w.inflow - w.outflow

    def count(self, window: str) -> int:
        """Observations in the window."""
        return len(self._windows[window].obs)

    def update(self, t_ms: int, inflow: float, outflow: float) -> dict[str, float]:
        """Add one observation; {window name: netflow sum over (t_ms - length, t_ms]}.

        EventOrderError for a t_ms not after the last one (the same t_ms again too: a repeat
        would count its flows twice), ValueError for a negative or non-finite flow; the state
        is unchanged then.
        """
        check_newer("netflow", t_ms, self.last_t_ms)
        inflow = float(inflow)
        outflow = float(outflow)
        for what, v in (("inflow", inflow), ("outflow", outflow)):
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{what} at t_ms={t_ms} must be finite and >= 0: {v!r}")
        self.last_t_ms = t_ms
        for w in self._windows.values():
            w.add(t_ms, inflow, outflow)
            w.evict(t_ms)
        return {name: w.inflow - w.outflow for name, w in self._windows.items()}

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state; ``from_state`` continues bit-for-bit from it."""
        return {
            "last_t_ms": self.last_t_ms,
            "windows": {
                name: {
                    "length_ms": w.length_ms,
                    "obs": [list(o) for o in w.obs],
                    "sums": list(w.sums),
                    "evicted": w.evicted,
                }
                for name, w in self._windows.items()
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RollingNetflow:
        windows = state["windows"]
        rn = cls({name: int(ws["length_ms"]) for name, ws in windows.items()})
        for name, ws in windows.items():
            w = rn._windows[name]
            w.obs = deque((int(t), float(i), float(o)) for t, i, o in ws["obs"])
            w.sums = [float(v) for v in ws["sums"]]
            if len(w.sums) != 4:
                raise ValueError(f"netflow state of window {name!r} needs 4 sums, got {w.sums}")
            w.evicted = int(ws["evicted"])
        last = state["last_t_ms"]
        rn.last_t_ms = int(last) if last is not None else None
        return rn


def classify(netflow: float, threshold: float) -> str:
    """"accumulation" (netflow <= -threshold), "distribution" (>= threshold) or "neutral"."""
    netflow = float(netflow)
    threshold = float(threshold)
    if not (math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold must be finite and >= 0, got {threshold!r}")
    if not math.isfinite(netflow):
        raise ValueError(f"netflow must be finite, got {netflow!r}")
    if netflow <= -threshold:
        return "accumulation"
    if netflow >= threshold:
        return "distribution"
    return "neutral"


def rank_flows(flows: Mapping[str, float]) -> list[tuple[str, float]]:
    """(name, netflow) pairs, strongest accumulation (most negative) first, ties by name."""
    for name, v in flows.items():
        if not math.isfinite(v):
            raise ValueError(f"netflow of {name!r} must be finite, got {v!r}")
    return sorted(((name, float(v)) for name, v in flows.items()), key=lambda kv: (kv[1], kv[0]))


def imbalance(inflow: float, outflow: float) -> float | None:
    """Netflow as a share of all flow, -1 (only withdrawals) .. +1 (only deposits)."""
    total = inflow + outflow
    return (inflow - outflow) / total if total > 0 else None


def netflow_signal(series: str, event_time: str, band: str, window: str, inflow: float,
                   outflow: float, share: float, threshold: float) -> Signal:
    """``netflow_accumulation`` / ``netflow_distribution`` for a token on an exchange."""
    exchange, token = series.split(":", 1)
    net = inflow - outflow
    if band == "accumulation":
        what = (f"{token} is being withdrawn from {exchange}: net outflow of {-net:,.2f} "
                f"{token} over {window} ({-share:.0%} of all flow), coins moved off the "
                f"exchange to be held (accumulation).")
    else:
        what = (f"{token} is being sent to {exchange}: net inflow of {net:,.2f} {token} over "
                f"{window} ({share:.0%} of all flow), coins made ready to sell (distribution).")
    return make_signal(
        f"netflow_{band}", series, event_time, "notice", net, what,
        {"window": window, "inflow": inflow, "outflow": outflow, "netflow": net,
         "imbalance": share, "threshold": threshold},
    )
