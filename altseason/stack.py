"""Local stack: a single-node KRaft Kafka broker and a redis-server run as plain processes.

Needs no Docker: Kafka's jars come from Maven Central once, redis-server from the OS. The
state lives in a stack folder so `up` is idempotent and `down` works from another shell.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from subprocess import DEVNULL, PIPE, STDOUT
from typing import Any

import redis
from aiokafka.admin import AIOKafkaAdminClient

from foundation.errors import StackError

KAFKA_VERSION = "4.1.1"
_POM = Path(__file__).resolve().parent.parent / "deploy" / "local" / "pom.xml"
_STATE = "stack.json"  # running processes; removed by `down`
_PORTS = "ports.json"  # last ports; kept by `down` so the Kafka data stays usable
_PORT_KEYS = ("kafka_port", "controller_port", "redis_port")

_SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{kafka_port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{kafka_port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data_dir}
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# records carry their event time as timestamp, and replays and backfills are months or years
# old: with the default 7-day retention the broker deletes them within minutes of arrival
log.retention.ms=-1
"""

# Warnings and errors only: the broker's stdout already goes to stack_dir/kafka.log.
_LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
"""


@dataclass(frozen=True)
class StackInfo:
    """Where the stack's services answer; what the CLI prints and the apps read."""

    kafka_bootstrap_servers: str
    redis_url: str
    external: bool
    kafka_pid: int | None = None
    redis_pid: int | None = None

    def env_lines(self) -> list[str]:
        """Lines for an env file or `eval`, so other processes find the stack."""
        return [
            f"KAFKA_BOOTSTRAP_SERVERS={self.kafka_bootstrap_servers}",
            f"REDIS_URL={self.redis_url}",
        ]


def default_stack_dir() -> Path:
    """The stack folder: one per checkout unless ALTSEASON_STACK_DIR says otherwise."""
    return Path(os.environ.get("ALTSEASON_STACK_DIR") or Path.cwd() / ".stack")


def jar_cache_dir() -> Path:
    """Where Kafka's jars are kept, shared by every checkout of this user."""
    env = os.environ.get("ALTSEASON_KAFKA_LIBS")
    return Path(env) if env else Path.home() / ".cache/altseason" / f"kafka-{KAFKA_VERSION}/libs"


def ensure_kafka_jars(libs: Path | None = None) -> Path:
    """Fetch Kafka's jars with Maven once; a marker file says the copy is complete."""
    libs = libs or jar_cache_dir()
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(f"Maven not found: apt-get install maven (fetches Kafka {KAFKA_VERSION})")
    if not _POM.exists():
        raise StackError(f"{_POM} is missing: run the local stack from a source checkout")
    with _locked(libs.parent):  # two `up`s at once must not both write the cache
        if marker.exists():
            return libs
        libs.mkdir(parents=True, exist_ok=True)
        cmd = [mvn, "-q", "-B", "-f", str(_POM), f"-DoutputDirectory={libs}",
               f"-Dkafka.version={KAFKA_VERSION}"]
        done = subprocess.run(cmd, stdout=PIPE, stderr=STDOUT, text=True, stdin=DEVNULL)
        if done.returncode != 0:
            raise StackError(
                f"Maven could not fetch Kafka {KAFKA_VERSION} from Maven Central: "
                f"{_tail(done.stdout)}"
            )
        marker.write_text(KAFKA_VERSION + "\n")
    return libs


def ensure_redis_server() -> str:
    """Find redis-server, installing the Debian package when we are allowed to."""
    found = shutil.which("redis-server")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-yqq", "redis-server"]):
            done = subprocess.run(cmd, env=env, stdout=PIPE, stderr=STDOUT, text=True)
            if done.returncode != 0:
                raise StackError(f"{' '.join(cmd)} failed: {_tail(done.stdout)}")
        found = shutil.which("redis-server")
    if found is None:
        raise StackError("redis-server not found: install it (apt-get install redis-server)")
    return found


def up(stack_dir: Path | None = None, *, timeout_s: float = 90) -> StackInfo:
    """Start Kafka and redis-server for this stack folder, or return the ones already running."""
    external = _external()
    if external is not None:
        return external
    stack_dir = (stack_dir or default_stack_dir()).resolve()
    with _locked(stack_dir):
        state = _read_json(stack_dir / _STATE)
        if state is not None:
            if _running(state, stack_dir):
                return _info(state)
            _stop(state, stack_dir, grace_s=5)  # leftovers of a stack that crashed
            (stack_dir / _STATE).unlink(missing_ok=True)
        java = shutil.which(os.environ.get("ALTSEASON_JAVA", "java"))
        if java is None:
            raise StackError(
                "Java 17+ not found: apt-get install openjdk-17-jre-headless, or set ALTSEASON_JAVA"
            )
        redis_server = ensure_redis_server()
        libs = ensure_kafka_jars()
        ports = _choose_ports(state or _read_json(stack_dir / _PORTS), stack_dir)
        started: list[subprocess.Popen[bytes]] = []
        try:
            return _start(stack_dir, ports, java, redis_server, libs, timeout_s, started)
        except BaseException:
            _terminate([proc.pid for proc in started], grace_s=5)
            (stack_dir / _STATE).unlink(missing_ok=True)
            raise


def down(stack_dir: Path | None = None, *, purge: bool = False) -> None:
    """Stop this stack folder's processes; `purge` also deletes their data."""
    if _external() is not None:
        return
    stack_dir = (stack_dir or default_stack_dir()).resolve()
    if not stack_dir.is_dir():
        return
    with _locked(stack_dir):
        _stop(_read_json(stack_dir / _STATE) or {}, stack_dir, grace_s=15)
        (stack_dir / _STATE).unlink(missing_ok=True)
        if purge:
            shutil.rmtree(stack_dir / "kafka", ignore_errors=True)
            shutil.rmtree(stack_dir / "redis", ignore_errors=True)
            (stack_dir / _PORTS).unlink(missing_ok=True)


def status(stack_dir: Path | None = None) -> StackInfo | None:
    """The running stack, or None when nothing of this stack folder answers."""
    external = _external()
    if external is not None:
        return external
    stack_dir = (stack_dir or default_stack_dir()).resolve()
    state = _read_json(stack_dir / _STATE)
    return _info(state) if state is not None and _running(state, stack_dir) else None


def _start(
    stack_dir: Path,
    ports: dict[str, int],
    java: str,
    redis_server: str,
    libs: Path,
    timeout_s: float,
    started: list[subprocess.Popen[bytes]],
) -> StackInfo:
    """Format Kafka's data dir if new, spawn both processes and wait until they answer."""
    _write_json(stack_dir / _PORTS, ports)
    data_dir, redis_dir = stack_dir / "kafka", stack_dir / "redis"
    redis_dir.mkdir(exist_ok=True)
    config, log4j = stack_dir / "server.properties", stack_dir / "log4j2.yaml"
    config.write_text(_SERVER_PROPERTIES.format(data_dir=data_dir, **ports))
    log4j.write_text(_LOG4J2)
    java_cmd = [java, "-Xmx512m", "-Xms256m", "-cp", f"{libs}/*"]
    java_cmd.append(f"-Dlog4j2.configurationFile={log4j}")
    cluster_id = _cluster_id(data_dir)
    if cluster_id is None:
        cluster_id = _new_cluster_id()
        cmd = [*java_cmd, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)]
        done = subprocess.run(cmd, stdout=PIPE, stderr=STDOUT, text=True, cwd=stack_dir)
        if done.returncode != 0:
            shutil.rmtree(data_dir, ignore_errors=True)
            raise StackError(f"Kafka could not format {data_dir}: {_tail(done.stdout)}")
    kafka_log, redis_log = stack_dir / "kafka.log", stack_dir / "redis.log"
    kafka = _spawn([*java_cmd, "kafka.Kafka", str(config)], kafka_log)
    started.append(kafka)
    redis_cmd = [redis_server, "--bind", "127.0.0.1", "--port", str(ports["redis_port"])]
    redis_cmd += ["--save", "", "--appendonly", "no", "--dir", str(redis_dir)]
    redis_cmd += ["--daemonize", "no", "--protected-mode", "yes"]
    redis_proc = _spawn(redis_cmd, redis_log)
    started.append(redis_proc)
    state = {**ports, "kafka_pid": kafka.pid, "redis_pid": redis_proc.pid}
    _write_json(stack_dir / _STATE, {**state, "cluster_id": cluster_id})  # so `up` can clean up
    info = _info(state)
    deadline = time.monotonic() + timeout_s
    _wait_until("redis-server", redis_proc, redis_log, deadline, lambda: _redis_answers(info))
    _wait_until("Kafka", kafka, kafka_log, deadline, lambda: _kafka_answers(info))
    return info


def _wait_until(
    name: str, proc: subprocess.Popen[bytes], log: Path, deadline: float, ready: Callable[[], bool]
) -> None:
    """Poll ready() until it holds; fail fast, with its log, if the process exits meanwhile."""
    while not ready():
        if proc.poll() is not None:
            problem = f"{name} exited early (code {proc.returncode})"
        elif time.monotonic() > deadline:
            problem = f"{name} did not answer before the timeout"
        else:
            time.sleep(0.2)
            continue
        raise StackError(f"{problem}; end of {log}:\n{_tail(log.read_text(errors='replace'))}")


def _choose_ports(recorded: dict[str, Any] | None, stack_dir: Path) -> dict[str, int]:
    """Reuse the recorded ports if free; new ports mean a fresh Kafka data dir."""
    if recorded and all(isinstance(recorded.get(key), int) for key in _PORT_KEYS):
        old = {key: int(recorded[key]) for key in _PORT_KEYS}
        taken = [port for port in old.values() if not _port_free(port)]
        if not taken:
            return old
        print(
            f"altseason stack: port(s) {taken} in use by another program; using new ports "
            "and a fresh Kafka data dir",
            file=sys.stderr,
        )
    shutil.rmtree(stack_dir / "kafka", ignore_errors=True)
    sockets = [socket.socket() for _ in _PORT_KEYS]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return {key: sock.getsockname()[1] for key, sock in zip(_PORT_KEYS, sockets, strict=True)}
    finally:
        for sock in sockets:
            sock.close()


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start a detached process in the stack folder (own session: outlives us, dies as a group)."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            cmd, stdin=DEVNULL, stdout=out, stderr=STDOUT, cwd=log.parent, start_new_session=True
        )


def _running(state: dict[str, Any], stack_dir: Path) -> bool:
    """True when both recorded processes are ours, alive, and their ports answer."""
    pids = [state.get("kafka_pid"), state.get("redis_pid")]
    return (
        all(isinstance(pid, int) and _owned(pid, stack_dir) for pid in pids)
        and _port_open(state["kafka_port"])
        and _port_open(state["redis_port"])
    )


def _stop(state: dict[str, Any], stack_dir: Path, grace_s: float) -> None:
    """Stop the recorded processes that are still ours (a pid may have been reused)."""
    pids = [state.get("kafka_pid"), state.get("redis_pid")]
    _terminate([pid for pid in pids if isinstance(pid, int) and _owned(pid, stack_dir)], grace_s)


def _terminate(pids: list[int], grace_s: float) -> None:
    """SIGTERM each process group, then SIGKILL what is still alive after grace_s."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        for pid in pids:
            with suppress(ProcessLookupError, PermissionError):
                try:
                    os.killpg(pid, sig)
                except ProcessLookupError:
                    os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while any(_alive(pid) for pid in pids):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        else:
            return


def _alive(pid: int) -> bool:
    """True while the process exists; reaps it first if it is our own dead child."""
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owned(pid: int, stack_dir: Path) -> bool:
    """True if pid is alive and works inside stack_dir (both our processes do)."""
    if not _alive(pid):
        return False
    if not Path("/proc/self").exists():
        return True  # no /proc to ask: trust the recorded pid
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return cwd == stack_dir or stack_dir in cwd.parents


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Java and Redis do
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _redis_answers(info: StackInfo) -> bool:
    client = redis.Redis.from_url(info.redis_url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _kafka_answers(info: StackInfo) -> bool:
    """True once the broker serves metadata; in a thread, since our caller may own a loop."""
    if not _port_open(int(info.kafka_bootstrap_servers.rsplit(":", 1)[1])):
        return False  # cheap check first: aiokafka logs every refused connection

    async def probe() -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=info.kafka_bootstrap_servers, request_timeout_ms=5000
        )
        try:
            await admin.start()
            await admin.list_topics()
        finally:
            await admin.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(lambda: asyncio.run(probe())).result()
        except Exception:
            return False
    return True


def _cluster_id(data_dir: Path) -> str | None:
    """The cluster id of an already formatted Kafka data dir."""
    with suppress(OSError):
        for line in (data_dir / "meta.properties").read_text().splitlines():
            if line.startswith("cluster.id="):
                return line.removeprefix("cluster.id=").strip()
    return None


def _new_cluster_id() -> str:
    """A Kafka Uuid in its base64 form, as `StorageTool random-uuid` prints, without a JVM."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _info(state: dict[str, Any]) -> StackInfo:
    return StackInfo(
        kafka_bootstrap_servers=f"127.0.0.1:{state['kafka_port']}",
        redis_url=f"redis://127.0.0.1:{state['redis_port']}/0",
        external=False,
        kafka_pid=state.get("kafka_pid"),
        redis_pid=state.get("redis_pid"),
    )


def _external() -> StackInfo | None:
    """The stack named by KAFKA_BOOTSTRAP_SERVERS and REDIS_URL, when both are set."""
    kafka, redis_url = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("REDIS_URL")
    return StackInfo(kafka, redis_url, external=True) if kafka and redis_url else None


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on folder, so concurrent `up`/`down` calls take turns."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"
