"""Log configuration: library debug records are not built when the level is above debug."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator

import pytest

from altseason.logs import LEVELLED_LOGGERS, logging_config


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
