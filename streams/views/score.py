"""The altseason score: the weighted mean of the components the other views send, applied in
event-time order (``streams.views.fanin``: every weighted component holds the score back until
it has passed that time or is idle), so a replay gives the same scores and signals however
fast each view runs; ``altseason_score`` when it enters another band.

State: "score" -> {"score": ``AltseasonScore`` state, "cooldown", "snapshot"}, plus the
fan-in's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foundation.config import SignalSettings
from schemas.records import Observation, Signal
from schemas.redis_layout import ViewUpdate
from streams.correlation import ms_to_iso
from streams.hysteresis import Cooldown
from streams.score import AltseasonScore, ScoreUpdate
from streams.signals import make_signal
from streams.views.step import MARKET_KEY, Changes, Outputs, Route

DAY_MS = 86_400_000
BANDS = ("cold", "warming", "altseason")


def component(name: str, t_ms: int, raw: float | None,
              detail: dict[str, Any] | None = None) -> Route:
    """A score component's value at ``t_ms`` for the score step; ``raw`` None says only that
    the component has got this far (the score's fan-in waits for every component)."""
    return Route("score", MARKET_KEY, Observation(
        kind="progress" if raw is None else "component", subject=name,
        event_time=ms_to_iso(t_ms), t_ms=t_ms,
        event={} if raw is None else {"raw": raw, "detail": detail or {}}))


def weighted_components(config: SignalSettings) -> list[str]:
    return [name for name, weight in config.score_weight_map.items() if weight > 0]


def new_score(config: SignalSettings) -> AltseasonScore:
    return AltseasonScore(config.score_weight_map,
                          max_age_ms=int(config.score_max_age_days * DAY_MS),
                          hysteresis=config.score_hysteresis,
                          levels=(("cold", float("-inf")), ("warming", config.score_warming),
                                  ("altseason", config.score_altseason)))


def snapshot(update: ScoreUpdate) -> dict[str, Any]:
    return {"score": update.score, "band": update.band, "event_time": ms_to_iso(update.t_ms),
            "components": update.contributions, "missing": update.missing}


def score_signal(update: ScoreUpdate, config: SignalSettings) -> Signal:
    """``altseason_score``: the score entered another band; evidence = each contribution."""
    parts = sorted(update.contributions.items(), key=lambda kv: -kv[1]["contribution"])
    explained = ", ".join(f"{name} {c['contribution']:.1f}" for name, c in parts)
    rising = BANDS.index(update.band) > BANDS.index(update.previous_band or "cold")
    missing = f"; missing: {', '.join(update.missing)}" if update.missing else ""
    return make_signal(
        "altseason_score", "altseason", ms_to_iso(update.t_ms),
        "warning" if update.band == "altseason" else "notice" if rising else "info",
        update.score,
        f"Altseason score {update.score:.0f}/100: {update.band} (was "
        f"{update.previous_band}). Points by component: {explained}{missing}.",
        {"score": update.score, "band": update.band, "previous_band": update.previous_band,
         "components": update.contributions, "missing": update.missing,
         "bands": {"warming": config.score_warming, "altseason": config.score_altseason,
                   "hysteresis": config.score_hysteresis}},
    )


def apply(state: Mapping[str, Any], observation: Observation,
          config: SignalSettings) -> tuple[Changes, Outputs]:
    """One component value, in event-time order (the fan-in releases them)."""
    stored = state.get("score")
    score = AltseasonScore.from_state(stored["score"]) if stored else new_score(config)
    cooldown = Cooldown.from_state(stored["cooldown"]) if stored else Cooldown(
        int(config.score_cooldown_hours * 3_600_000))
    update = score.update(observation.subject, observation.t_ms, observation.event["raw"])
    out = Outputs()
    shown = (stored or {}).get("snapshot")
    if update is not None:
        shown = snapshot(update)
        out.views.append(ViewUpdate("score", "altseason", shown))
        if update.changed and cooldown.ready("band", update.t_ms):
            cooldown.fired("band", update.t_ms)
            out.signals.append(score_signal(update, config))
    return {"score": {"score": score.to_state(), "cooldown": cooldown.to_state(),
                      "snapshot": shown}}, out


def views_of(state: Mapping[str, Any], key: str, config: SignalSettings) -> list[ViewUpdate]:
    shown = state[key].get("snapshot") if key == "score" else None
    return [ViewUpdate("score", "altseason", shown)] if shown else []
