"""The composite altseason score, from the components the other agents send.

Redis: ``score:altseason`` hash (score, band, components as JSON) on channel ``score``.
"""

from __future__ import annotations

from typing import Any

from faust import StreamT

from agents.outputs import dead_letter, emit_signal, view
from altseason.errors import EventOrderError
from schemas.records import ScoreComponent, Signal
from streams.app import app, settings
from streams.correlation import ms_to_iso
from streams.hysteresis import Cooldown
from streams.score import AltseasonScore, ScoreUpdate
from streams.signals import make_signal
from streams.topics import score_components_topic

config = settings.signals
DAY_MS = 86_400_000
#: "altseason" -> {"score": AltseasonScore state, "cooldown", "snapshot"}
score_state = app.Table("score-state", default=dict)


def new_score() -> AltseasonScore:
    return AltseasonScore(config.score_weight_map,
                          max_age_ms=int(config.score_max_age_days * DAY_MS),
                          hysteresis=config.score_hysteresis,
                          levels=(("cold", float("-inf")), ("warming", config.score_warming),
                                  ("altseason", config.score_altseason)))


def snapshot(update: ScoreUpdate) -> dict[str, Any]:
    return {"score": update.score, "band": update.band, "event_time": ms_to_iso(update.t_ms),
            "components": update.contributions, "missing": update.missing}


def score_signal(update: ScoreUpdate) -> Signal:
    """``altseason_score``: the score entered another band; evidence = each contribution."""
    parts = sorted(update.contributions.items(), key=lambda kv: -kv[1]["contribution"])
    explained = ", ".join(f"{name} {c['contribution']:.1f}" for name, c in parts)
    rising = ["cold", "warming", "altseason"].index(update.band) > \
        ["cold", "warming", "altseason"].index(update.previous_band or "cold")
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


@app.agent(score_components_topic)
async def track_score(stream: StreamT) -> None:
    async for event in stream.events():
        component: ScoreComponent = event.value
        state = score_state.get("altseason")
        score = AltseasonScore.from_state(state["score"]) if state else new_score()
        cooldown = Cooldown.from_state(state["cooldown"]) if state else Cooldown(
            int(config.score_cooldown_hours * 3_600_000))
        try:
            update = score.update(component.component, component.t_ms, component.raw)
        except (EventOrderError, ValueError) as exc:
            await dead_letter(event.message, component.dumps(), str(exc), "track_score")
            continue
        fire = update is not None and update.changed and cooldown.ready("band", update.t_ms)
        if update is not None and fire:
            cooldown.fired("band", update.t_ms)
        shown = snapshot(update) if update else (state or {}).get("snapshot")
        if update is not None:
            await view.update("score", "altseason", shown or {})
            if fire:
                await emit_signal(score_signal(update))
        score_state["altseason"] = {"score": score.to_state(), "cooldown": cooldown.to_state(),
                                    "snapshot": shown}  # after the signal (outputs.py)


async def rebuild_score_view() -> None:
    for name, state in list(score_state.items()):
        if state.get("snapshot"):
            await view.update("score", name, state["snapshot"], only_if_missing=True)
