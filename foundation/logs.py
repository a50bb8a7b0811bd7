"""Logs: one JSON object per line for log collectors, plain text for a person at a terminal.

``log_format`` (settings): ``json``, ``text``, or ``auto`` (text when the stream is a terminal,
else JSON). The worker hands :func:`logging_config` to Faust (which installs it with
``dictConfig``); the other commands call :func:`configure_logging`.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import time
from datetime import UTC, datetime
from typing import Any

#: our level names (settings.log_level) -> logging's
LEVELS = {"crit": "CRITICAL", "error": "ERROR", "warn": "WARNING", "info": "INFO",
          "debug": "DEBUG"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: loggers that get ``log_level`` explicitly: at a level >= warn, Faust's worker sets the root
#: logger to DEBUG for its terminal spinner, and every ``log.debug`` on the hot path then
#: built a record only for the handler to drop it (5 % of a tick, ``bench/RESULTS.md``)
LEVELLED_LOGGERS = ("faust", "mode", "aiokafka", "redis", "asyncio", "agents", "altseason",
                    "producers", "streams", "schemas")
#: loggers whose repeats are thinned out (RepeatFilter)
THINNED_LOGGERS = ("aiokafka",)
#: LogRecord attributes that are not extra fields given with ``log.info(..., extra={})``
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message",
                                                                               "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...extra, "exc_info"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RepeatFilter(logging.Filter):
    """Lets through the first record of each message (logger and template) per ``window_s``
    and counts the others, which the next one let through carries as ``repeated``. With its
    broker down, aiokafka reconnects in a loop (aio-libs/aiokafka#496): a worker logged
    "Unable connect to node" 6,000 times a second."""

    def __init__(self, loggers: tuple[str, ...] = THINNED_LOGGERS, window_s: float = 10.0):
        super().__init__()
        self.loggers = loggers
        self.window_s = window_s
        self._last: dict[tuple[str, object], tuple[float, int]] = {}  # -> (shown at, dropped)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.loggers):
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        shown_at, dropped = self._last.get(key, (-self.window_s, 0))
        if now - shown_at < self.window_s:
            self._last[key] = (shown_at, dropped + 1)
            return False
        self._last[key] = (now, 0)
        if dropped:
            record.repeated = dropped
        return True


def resolved_format(log_format: str, stream: str = "stdout") -> str:
    """``json`` or ``text``: ``auto`` is text only on a terminal."""
    if log_format == "auto":
        return "text" if getattr(sys, stream).isatty() else "json"
    return log_format


def logging_config(log_level: str, log_format: str, stream: str = "stdout") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` mapping: everything to ``stream``, at ``log_level``.

    Services (worker, producers, dashboard) log to stdout, as containers do; commands whose
    stdout is their output (``run``, ``signals tail``, ``config check``) log to stderr.
    """
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if resolved_format(log_format, stream) == "json"
        else {"format": TEXT_FORMAT})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"repeats": {"()": f"{__name__}.RepeatFilter"}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                "filters": ["repeats"], "stream": f"ext://sys.{stream}"}},
        "loggers": {name: {"level": LEVELS[log_level]} for name in LEVELLED_LOGGERS},
        "root": {"level": LEVELS[log_level], "handlers": ["default"]},
    }


def configure_logging(log_level: str, log_format: str, stream: str = "stdout") -> None:
    logging.config.dictConfig(logging_config(log_level, log_format, stream))
