"""The layers import only downwards (docs/architecture.md): the ground floor nothing above
it, the pure math no Faust and no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("foundation", "schemas", "streams", "agents", "producers", "altseason")
#: what each layer may import of the project
ALLOWED = {
    "foundation": {"foundation"},
    "schemas": {"foundation", "schemas"},
    "streams": {"foundation", "schemas", "streams"},
    "agents": {"foundation", "schemas", "streams", "agents"},
    "producers": {"foundation", "schemas", "producers"},
}
#: a process's entry point, which may use the roof: the live producer creates its topics
#: (``altseason.kafka_admin``) before it starts
ENTRY_POINTS = {"producers/live/run.py"}
#: libraries that do I/O or run an event loop: not in the pure math
NOT_PURE = {"faust", "mode", "aiokafka", "redis", "asyncio", "aiohttp", "websockets", "ccxt",
            "socket", "requests", "httpx"}


def imported(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (under TYPE_CHECKING too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    wrong = {f"{path.relative_to(ROOT)}: {name}"
             for path in (ROOT / layer).rglob("*.py")
             if str(path.relative_to(ROOT)) not in ENTRY_POINTS
             for name in imported(path) if name in PROJECT and name not in ALLOWED[layer]}
    assert not wrong


def test_the_math_does_no_io() -> None:
    wrong = {f"{path.relative_to(ROOT)}: {name}"
             for path in (ROOT / "streams").rglob("*.py")
             for name in imported(path) if name in NOT_PURE}
    assert not wrong
