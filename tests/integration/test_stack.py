"""The local stack with real processes: each test uses its own stack folder and stops it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from altseason import stack
from foundation.errors import StackError

pytestmark = pytest.mark.integration


@pytest.fixture
def stack_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private stack folder, stopped and purged afterwards even when the test fails."""
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    path = tmp_path / "stack"
    yield path
    stack.down(path, purge=True)
    assert _processes_in(path) == []


def _processes_in(stack_dir: Path) -> list[int]:
    """Pids whose working dir or command line is inside stack_dir (redis rewrites its argv)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cwd.startswith(str(stack_dir.resolve())) or str(stack_dir.resolve()) in cmdline:
            found.append(int(proc.name))
    return found


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _port_open(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


async def _kafka_round_trip(bootstrap: str) -> bytes:
    """Create a topic, produce one message and read it back."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("stack-test", num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("stack-test", b"hello")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        "stack-test", bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    assert message.value is not None
    return message.value


def test_up_serves_kafka_and_redis_then_down_stops_them(stack_dir: Path) -> None:
    info = stack.up(stack_dir)
    assert not info.external
    assert info.kafka_pid and info.redis_pid
    assert info.env_lines() == [
        f"KAFKA_BOOTSTRAP_SERVERS={info.kafka_bootstrap_servers}",
        f"REDIS_URL={info.redis_url}",
    ]

    assert asyncio.run(_kafka_round_trip(info.kafka_bootstrap_servers)) == b"hello"
    client = redis.Redis.from_url(info.redis_url)
    client.set("stack-test", "hi")
    assert client.get("stack-test") == b"hi"
    client.close()

    assert stack.up(stack_dir) == info  # idempotent: same processes
    assert stack.status(stack_dir) == info

    stack.down(stack_dir)
    assert not _pid_exists(info.kafka_pid) and not _pid_exists(info.redis_pid)
    assert not _port_open(info.kafka_bootstrap_servers)
    assert not _port_open(info.redis_url.removeprefix("redis://").removesuffix("/0"))
    assert stack.status(stack_dir) is None
    assert not (stack_dir / "stack.json").exists()
    stack.down(stack_dir)  # safe when nothing runs


def test_external_env_vars_start_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")
    monkeypatch.setenv("REDIS_URL", "redis://redis.example:6379/0")
    expected = stack.StackInfo("kafka.example:9092", "redis://redis.example:6379/0", external=True)

    assert stack.up(tmp_path / "stack") == expected
    assert stack.status(tmp_path / "stack") == expected
    stack.down(tmp_path / "stack")
    assert not (tmp_path / "stack").exists()


def test_missing_java_says_so(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALTSEASON_JAVA", "/nonexistent/java")
    with pytest.raises(StackError, match="Java 17"):
        stack.up(stack_dir)
    assert not (stack_dir / "stack.json").exists()
    assert _processes_in(stack_dir) == []


def test_broker_exiting_early_is_reported_and_redis_stopped(
    stack_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_java = tmp_path / "java"
    fake_java.write_text(
        '#!/bin/sh\ncase "$*" in *StorageTool*) exit 0;; esac\n'
        "sleep 0.5\necho 'boom: fake broker failed'\nexit 3\n"
    )
    fake_java.chmod(0o755)
    monkeypatch.setenv("ALTSEASON_JAVA", str(fake_java))

    with pytest.raises(StackError, match="(?s)Kafka exited early.*boom: fake broker failed"):
        stack.up(stack_dir)
    assert not (stack_dir / "stack.json").exists()
    assert _processes_in(stack_dir) == []


def test_stale_state_with_taken_port_restarts_on_new_ports(
    stack_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        stack_dir.mkdir()
        (stack_dir / "kafka").mkdir()
        (stack_dir / "kafka" / "old-data").write_text("x")
        state = {
            "kafka_port": taken,
            "controller_port": taken + 1,
            "redis_port": taken + 2,
            "kafka_pid": finished.pid,
            "redis_pid": finished.pid,
            "cluster_id": "x",
        }
        (stack_dir / "stack.json").write_text(json.dumps(state))

        info = stack.up(stack_dir)

        assert info.kafka_bootstrap_servers != f"127.0.0.1:{taken}"
        assert info.kafka_pid != finished.pid
        assert not (stack_dir / "kafka" / "old-data").exists()
        assert "in use by another program" in capfd.readouterr().err
        assert stack.status(stack_dir) == info


def test_maven_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mvn").write_text("#!/bin/sh\necho '[ERROR] Could not resolve kafka_2.13'\nexit 1\n")
    (bin_dir / "mvn").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))

    with pytest.raises(StackError, match="Maven could not fetch .*Could not resolve kafka_2.13"):
        stack.ensure_kafka_jars(tmp_path / "libs")
    assert not (tmp_path / "libs" / ".complete").exists()

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(StackError, match="Maven not found"):
        stack.ensure_kafka_jars(tmp_path / "libs")
