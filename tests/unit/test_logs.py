"""Log configuration: library debug records are not built when the level is above debug."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import time
from collections.abc import Iterator

import pytest

from foundation.logs import LEVELLED_LOGGERS, RepeatFilter, logging_config


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in LEVELLED_LOGGERS}
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_libraries_keep_the_level_when_faust_sets_the_root_logger_to_debug(
        restore_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    logging.config.dictConfig(logging_config("warn", "json"))
    logging.getLogger().setLevel(logging.DEBUG)  # what faust.worker does for its spinner
    for name in ("faust.transport.consumer", "mode.services", "aiokafka.conn",
                 "agents.bars"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    logging.getLogger("faust.tables").warning("kept")
    logging.getLogger("aiokafka.conn").debug("dropped before a record is built")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [("faust.tables", "kept")]


def test_debug_level_lets_library_debug_records_through(restore_logging: None) -> None:
    logging.config.dictConfig(logging_config("debug", "text"))
    assert logging.getLogger("aiokafka.conn").isEnabledFor(logging.DEBUG)


def test_a_library_repeating_one_error_is_thinned_out_and_counted() -> None:
    thinning = RepeatFilter(window_s=0.2)

    def record(logger: str, message: str) -> logging.LogRecord:
        return logging.LogRecord(logger, logging.ERROR, "", 0, message, (1,), None)

    kafka = [record("aiokafka", "Unable connect to node with id %s") for _ in range(1000)]
    ours = [record("agents.outputs", "each of ours is kept %s") for _ in range(1000)]
    assert [r for r in kafka if thinning.filter(r)] == kafka[:1]  # what a broker outage did
    assert [r for r in ours if thinning.filter(r)] == ours
    time.sleep(0.25)
    after = record("aiokafka", "Unable connect to node with id %s")
    assert thinning.filter(after) and after.repeated == 999
    assert logging_config("warn", "json")["handlers"]["default"]["filters"] == ["repeats"]
