"""The ``altseason`` command line: local stack, topics, worker, replay, run, signals, config."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import date
from pathlib import Path

from foundation.config import Settings
from foundation.errors import AltseasonError, ConfigError
from foundation.logs import configure_logging
from schemas.records import Signal

DEFAULT_REPLAY_DIR = Path("data/replay")


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _speed(value: str) -> float:
    try:
        speed = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if speed < 0:
        raise argparse.ArgumentTypeError("speed must be >= 0 (0 = as fast as possible)")
    return speed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="altseason", description=__doc__)
    parser.add_argument("--config", help="YAML settings file (default: $ALTSEASON_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser("stack", help="the local Kafka broker and redis-server")
    stack_sub = stack.add_subparsers(dest="action", required=True)
    stack_sub.add_parser("up", help="start (idempotent) and print the connection variables")
    down = stack_sub.add_parser("down", help="stop the local stack")
    down.add_argument("--purge", action="store_true", help="also delete its data")
    status = stack_sub.add_parser("status", help="what runs, where")
    status.add_argument("--env", action="store_true", help="print KEY=value lines only")

    topics = sub.add_parser("topics", help="Kafka topics")
    topics.add_argument("action", choices=["create"])

    sub.add_parser("worker", help="run a Faust worker with every agent")

    def replay_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--speed", type=_speed, default=0.0,
                       help="event-time seconds per wall second; 0 = as fast as possible")
        p.add_argument("--from", dest="since", type=_day, help="first day to replay")
        p.add_argument("--until", type=_day, help="last day to replay")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")

    replay = sub.add_parser("replay", help="send recorded data to the input topics")
    replay.add_argument("data_dir", type=Path, nargs="?", default=DEFAULT_REPLAY_DIR)
    replay_args(replay)

    run = sub.add_parser("run", help="worker + replay + signals, end to end")
    run.add_argument("--replay", dest="data_dir", type=Path, default=DEFAULT_REPLAY_DIR)
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--until-done", action="store_true",
                      help="exit once every replayed event is processed (the default)")
    mode.add_argument("--follow", action="store_true", help="keep running after the replay")
    run.add_argument("--timeout", type=float, default=900, help="seconds to wait for the worker")
    run.add_argument("--no-dashboard", action="store_true",
                     help="do not serve the dashboard (dashboard_port) during the run")
    replay_args(run)

    produce = sub.add_parser("produce", help="live producers")
    produce_sub = produce.add_subparsers(dest="mode", required=True)
    live = produce_sub.add_parser("live", help="stream exchanges' live data into the topics")
    live.add_argument("--config", dest="live_config", required=True,
                      help="YAML file of the sources (see examples/live.yaml)")

    signals = sub.add_parser("signals", help="the signals topic")
    signals.add_argument("action", choices=["tail"])
    signals.add_argument("--from-beginning", action="store_true")
    signals.add_argument("--json", action="store_true", help="print each signal as JSON")

    schemas = sub.add_parser("schemas", help="JSON Schema files of every topic")
    schemas.add_argument("action", choices=["generate"])

    config = sub.add_parser("config", help="settings")
    config.add_argument("action", choices=["check"],
                        help="validate defaults < FILE < ALTSEASON_* environment and print "
                             "the effective settings, secrets masked")
    config.add_argument("file", nargs="?", help="YAML file to check")

    dashboard = sub.add_parser("dashboard", help="the live dashboard over Redis pub/sub")
    dashboard.add_argument("--host", help="default: dashboard_host")
    dashboard.add_argument("--port", type=int, help="default: dashboard_port")

    report = sub.add_parser("report", help="PNG charts and a Markdown summary of the data")
    report.add_argument("--out", type=Path, required=True, help="folder to write into")
    report.add_argument("--replay", type=Path, default=DEFAULT_REPLAY_DIR,
                        help="recorded data to replay offline (default: data/replay)")
    report.add_argument("--from", dest="since", type=_day, help="first day")
    report.add_argument("--until", type=_day, help="last day")
    report.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except AltseasonError as exc:
        print(f"altseason: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _settings(args: argparse.Namespace) -> Settings:
    from foundation.config import load_settings

    return load_settings(getattr(args, "file", None) or args.config)


def _dispatch(args: argparse.Namespace) -> int:
    if args.config:
        import os

        os.environ["ALTSEASON_CONFIG"] = args.config  # the worker process reads it too
    if args.command == "stack":
        return _stack(args)
    if args.command == "schemas":
        from schemas.jsonschema import write_schema_files

        for path in write_schema_files():
            print(path)
        return 0
    if args.command == "config":
        from foundation.config import masked

        print(json.dumps(masked(_settings(args)), indent=2))
        return 0
    if args.command == "worker":
        from altseason.worker import run_worker

        run_worker()
        return 0
    settings = _settings(args)
    services = ("produce", "dashboard")  # log to stdout; the others print their output there
    configure_logging(settings.log_level, settings.log_format,
                      "stdout" if args.command in services else "stderr")
    if args.command == "topics":
        from altseason.kafka_admin import ensure_topics

        created = asyncio.run(ensure_topics(settings))
        print(f"created {len(created)} topics: {', '.join(created) or '(all existed)'}")
        return 0
    if args.command == "replay":
        from producers.replay import load_replay, replay

        events = load_replay(args.data_dir, args.since, args.until)
        from altseason.kafka_admin import ensure_topics

        asyncio.run(ensure_topics(settings))
        sent = asyncio.run(replay(settings, events, args.speed, not args.no_progress))
        print(f"sent {sent} events")
        return 0
    if args.command == "run":
        from altseason.run import run_replay

        asyncio.run(run_replay(settings, args.data_dir, since=args.since, until=args.until,
                               speed=args.speed, follow=args.follow,
                               progress=not args.no_progress, timeout_s=args.timeout,
                               dashboard=not args.no_dashboard))
        return 0
    if args.command == "signals":
        return asyncio.run(_tail(settings, args.from_beginning, args.json))
    if args.command == "produce":
        from producers.live.run import produce_live

        asyncio.run(produce_live(args.live_config, settings))
        return 0
    if args.command == "dashboard":
        from altseason.dashboard import serve_dashboard

        asyncio.run(serve_dashboard(settings, args.host, args.port))
        return 0
    if args.command == "report":
        from altseason.report import write_report

        path = write_report(args.out, args.replay, settings=settings,
                            progress=not args.no_progress, since=args.since, until=args.until)
        print(path)
        return 0
    raise ConfigError(f"unknown command {args.command}")


def _stack(args: argparse.Namespace) -> int:
    from altseason import stack

    if args.action == "up":
        info = stack.up()
        print("\n".join(info.env_lines()))
        return 0
    if args.action == "down":
        stack.down(purge=args.purge)
        return 0
    status = stack.status()
    if status is None:
        print("the local stack is not running (altseason stack up)", file=sys.stderr)
        return 1
    if args.env:
        print("\n".join(status.env_lines()))
    else:
        kind = "external (from environment)" if status.external else "local"
        print(f"{kind} stack: Kafka {status.kafka_bootstrap_servers} (pid {status.kafka_pid}), "
              f"Redis {status.redis_url} (pid {status.redis_pid})")
    return 0


async def _tail(settings: Settings, from_beginning: bool, as_json: bool) -> int:
    from altseason.signals_tail import SignalTail, signal_line

    def show(sig: Signal) -> None:
        print(sig.dumps().decode() if as_json else signal_line(sig), flush=True)

    tail = SignalTail(settings, show, from_beginning=from_beginning)
    await tail.start()
    try:
        while True:
            await tail.poll(1000)
    finally:
        await tail.stop()
