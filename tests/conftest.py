"""Shared fixtures: paths of the bundled real data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def replay_dir() -> Path:
    return ROOT / "data" / "replay"
