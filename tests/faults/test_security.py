"""Kafka over SASL_SSL (SCRAM-SHA-512) and Redis over TLS with an ACL user, end to end.

The test makes its own CA and server certificate, starts its own Kafka 4.1 broker (the local
stack's jars and Java, a SASL_SSL listener, SCRAM credentials created when the storage is
formatted) and its own redis-server (TLS port only, the default user off, one ACL user), then
runs the real worker, a replay of real data, the CLI and plain clients against them, configured
only through the environment (the Kafka password from a mounted file, the Redis URL with its
password from a variable). It checks that the pipeline works, that clients without the
credentials are refused, and that neither password appears in what altseason writes: the
worker's log, the CLI's output, the worker's /metrics, and the test process's own logs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as redis
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from harness import free_port
from redis.exceptions import RedisError

from altseason import stack
from altseason.run import log_tail, start_worker, stop_worker, wait_until_processed
from altseason.signals_tail import SignalTail
from foundation.config import Settings, load_settings
from foundation.connections import kafka_client_options, kafka_ssl_context, redis_client
from producers.replay import load_replay, replay
from schemas.records import Signal

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
USER = "altseason"
PREFIX = "altseason:"  # the ACL user may only touch these keys
SINCE = date(2025, 10, 1)

_KAFKA_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=SASL_SSL://127.0.0.1:{kafka_port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=SASL_SSL://127.0.0.1:{kafka_port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required \
username="broker" password="{broker_password}";
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
ssl.truststore.type=PEM
ssl.truststore.location={ca}
ssl.client.auth=none
log.dirs={data_dir}
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
"""


@dataclass(frozen=True)
class Certs:
    ca: Path  # the CA certificate clients trust
    cert: Path  # the server's certificate (127.0.0.1, localhost)
    key: Path  # its private key
    keystore: Path  # key + certificate chain in one PEM file, for Kafka


def make_certs(folder: Path) -> Certs:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "altseason test CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    certs = Certs(folder / "ca.pem", folder / "server.pem", folder / "server.key",
                  folder / "server-keystore.pem")
    certs.ca.write_bytes(ca_cert.public_bytes(pem))
    certs.cert.write_bytes(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    for path, data in ((certs.key, key_pem),
                       (certs.keystore, key_pem + cert.public_bytes(pem)
                        + ca_cert.public_bytes(pem))):
        path.write_bytes(data)
        path.chmod(0o600)
    return certs


def secret_file(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def start_kafka(folder: Path, certs: Certs, password: str,
                started: list[subprocess.Popen[bytes]]) -> str:
    """Format and start a private SASL_SSL broker (the local stack's jars and Java);
    ``altseason`` can log in with ``password``. Returns the bootstrap address."""
    java = shutil.which(os.environ.get("ALTSEASON_JAVA", "java"))
    assert java, "Java 17+ is needed (apt-get install openjdk-17-jre-headless)"
    libs = stack.ensure_kafka_jars()
    folder.mkdir(parents=True)
    ports = {"kafka_port": free_port(), "controller_port": free_port()}
    config, log4j = folder / "server.properties", folder / "log4j2.yaml"
    broker_password = secrets.token_hex(16)
    secret_file(config, _KAFKA_PROPERTIES.format(
        data_dir=folder / "data", keystore=certs.keystore, ca=certs.ca,
        broker_password=broker_password, **ports))
    log4j.write_text(stack._LOG4J2)
    java_cmd = [java, "-Xmx512m", "-Xms256m", "-cp", f"{libs}/*",
                f"-Dlog4j2.configurationFile={log4j}"]
    scram = [f"SCRAM-SHA-512=[name={USER},password={password}]",
             f"SCRAM-SHA-512=[name=broker,password={broker_password}]"]
    cmd = [*java_cmd, "kafka.tools.StorageTool", "format", "-t", stack._new_cluster_id(),
           "-c", str(config)]
    for credential in scram:
        cmd += ["--add-scram", credential]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          cwd=folder, timeout=60)
    assert done.returncode == 0, f"Kafka could not format its storage: {done.stdout[-2000:]}"
    started.append(stack._spawn([*java_cmd, "kafka.Kafka", str(config)], folder / "kafka.log"))
    return f"127.0.0.1:{ports['kafka_port']}"


def start_redis(folder: Path, certs: Certs, password: str,
                started: list[subprocess.Popen[bytes]]) -> int:
    """A private redis-server on a TLS port only: the default user off, one ACL user that may
    use every command on the ``altseason:`` keys and every channel. Returns its port."""
    folder.mkdir(parents=True)
    port = free_port()
    config = secret_file(folder / "redis.conf", "\n".join([
        "bind 127.0.0.1", "port 0", f"tls-port {port}", f"tls-cert-file {certs.cert}",
        f"tls-key-file {certs.key}", f"tls-ca-cert-file {certs.ca}", "tls-auth-clients no",
        "save \"\"", "appendonly no", f"dir {folder}", "daemonize no", "protected-mode yes",
        "user default off", f"user {USER} on >{password} ~{PREFIX}* &* +@all", ""]))
    started.append(stack._spawn([stack.ensure_redis_server(), str(config)],
                                folder / "redis.log"))
    return port


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float,
                process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``check`` until it holds; fail with the process's log if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert process.poll() is None, f"{what} exited:\n{log_tail(log)}"
        assert time.monotonic() < deadline, f"{what} not ready:\n{log_tail(log)}"
        await asyncio.sleep(0.5)


async def kafka_answers(settings: Settings) -> bool:
    admin = AIOKafkaAdminClient(**kafka_client_options(settings), request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), 15)
        await asyncio.wait_for(admin.list_topics(), 15)
        return True
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()


async def redis_answers(settings: Settings) -> bool:
    client = redis_client(settings, socket_timeout=5, socket_connect_timeout=5)
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()


async def kafka_refuses(**options: object) -> str:
    """The error of a client that tries to list topics with these options."""
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=5000)  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(admin.start(), 30)
        topics = await asyncio.wait_for(admin.list_topics(), 30)
    except (KafkaError, OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await admin.close()
    raise AssertionError(f"Kafka answered a client with {sorted(options)}: {topics}")


async def redis_refuses(url: str, **options: object) -> str:
    """The error of a client that tries to PING with this URL and options."""
    client = redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, **options)
    try:
        answer = await client.ping()
    except (RedisError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.aclose()
    raise AssertionError(f"Redis answered {url} with {sorted(options)}: {answer}")


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``altseason ARGS`` as a user runs it, with ``env`` (stdout and stderr kept apart)."""
    return subprocess.run([sys.executable, "-m", "altseason", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


async def read_signals(settings: Settings) -> list[Signal]:
    """Every signal on the topic, through ``altseason signals tail``'s reader."""
    found: list[Signal] = []
    tail = SignalTail(settings, found.append, from_beginning=True)
    await tail.start()
    try:
        async with asyncio.timeout(60):
            while not await tail.caught_up():
                await tail.poll(500)
    finally:
        await tail.stop()
    return found


async def test_sasl_ssl_kafka_and_tls_acl_redis_work_and_no_secret_leaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for key in list(os.environ):  # nothing of the shared stack or the caller's settings
        if key.startswith(("ALTSEASON_", "KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")) \
                and key not in ("ALTSEASON_JAVA", "ALTSEASON_KAFKA_LIBS"):
            monkeypatch.delenv(key)
    caplog.set_level(logging.DEBUG, logger="aiokafka")
    caplog.set_level(logging.DEBUG, logger="altseason")
    kafka_password, redis_password = f"kpw-{secrets.token_hex(12)}", f"rpw-{secrets.token_hex(12)}"
    certs = make_certs(tmp_path / "certs")
    started: list[subprocess.Popen[bytes]] = []
    worker: subprocess.Popen[bytes] | None = None
    worker_log = tmp_path / "worker.log"
    try:
        bootstrap = start_kafka(tmp_path / "kafka", certs, kafka_password, started)
        redis_port = start_redis(tmp_path / "redis", certs, redis_password, started)
        web_port = free_port()
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "ALTSEASON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "ALTSEASON_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "ALTSEASON_KAFKA_SASL_USERNAME": USER,
            # a mounted secret, with the trailing newline such files usually have
            "ALTSEASON_KAFKA_SASL_PASSWORD_FILE": str(
                secret_file(tmp_path / "kafka-password", kafka_password + "\n")),
            "ALTSEASON_KAFKA_SSL_CAFILE": str(certs.ca),
            "REDIS_URL": f"rediss://{USER}:{redis_password}@127.0.0.1:{redis_port}/0",
            "ALTSEASON_REDIS_SSL_CA_CERTS": str(certs.ca),
            "ALTSEASON_REDIS_PREFIX": PREFIX,
            "ALTSEASON_TOPIC_PREFIX": "sec.",
            "ALTSEASON_APP_ID": "altseason-sec",
            "ALTSEASON_DATADIR": str(tmp_path / "worker-data"),
            "ALTSEASON_WEB_PORT": str(web_port),
            "ALTSEASON_LOG_LEVEL": "info",
            "ALTSEASON_LOG_FORMAT": "json",
            "ALTSEASON_SIGNALS__ATH_MIN_HISTORY_DAYS": "0",
        }
        settings = load_settings(env=env)
        assert settings.kafka_sasl_password == kafka_password  # read from the file
        full_env = {**os.environ, **env}
        await until("Kafka", lambda: kafka_answers(settings), 90, started[0],
                    tmp_path / "kafka" / "kafka.log")
        await until("redis-server", lambda: redis_answers(settings), 20, started[1],
                    tmp_path / "redis" / "redis.log")

        # clients without the credentials are refused by both
        refusals = [
            await kafka_refuses(bootstrap_servers=bootstrap),  # plain text, no login
            await kafka_refuses(bootstrap_servers=bootstrap, security_protocol="SSL",
                                ssl_context=kafka_ssl_context(settings)),  # TLS, no login
            await kafka_refuses(**{**kafka_client_options(settings),
                                   "sasl_plain_password": "wrong-password"}),
            await redis_refuses(f"redis://127.0.0.1:{redis_port}/0"),  # plain text
            await redis_refuses(f"rediss://127.0.0.1:{redis_port}/0",  # TLS, no user
                                ssl_ca_certs=str(certs.ca)),
            await redis_refuses(f"rediss://{USER}:wrong-password@127.0.0.1:{redis_port}/0",
                                ssl_ca_certs=str(certs.ca)),
        ]
        assert all(r.startswith("KafkaConnectionError") for r in refusals[:3]), refusals
        assert refusals[3].startswith("ConnectionError"), refusals
        assert all(r.startswith("AuthenticationError") for r in refusals[4:]), refusals

        # the CLI over SASL_SSL: create the topics, show the settings
        created = cli("topics", "create", env=full_env)
        assert created.returncode == 0, created.stderr
        checked = cli("config", "check", env=full_env)
        assert checked.returncode == 0, checked.stderr
        shown = json.loads(checked.stdout)
        assert shown["kafka_sasl_password"] == "***"
        assert shown["redis_url"] == f"rediss://***@127.0.0.1:{redis_port}/0"

        # the worker and a replay of real data, then what users read
        worker = start_worker(worker_log, env)
        events = load_replay(ROOT / "data" / "replay", since=SINCE)
        assert await replay(settings, events, progress=False) == len(events)
        await wait_until_processed(settings, worker, worker_log, timeout_s=150)
        signals = await read_signals(settings)
        assert signals, "no signal reached the signals topic"
        client = redis_client(settings, decode_responses=True)
        try:
            async with asyncio.timeout(20):  # the last Redis writes of the final batch
                while len(recent := await client.lrange(f"{PREFIX}signals:recent", 0, -1)) \
                        < len(signals):  # noqa: ASYNC110 (polling Redis, not an event)
                    await asyncio.sleep(0.5)
            assert {json.loads(raw)["id"] for raw in recent} == {s.id for s in signals}
            assert await client.hget(f"{PREFIX}meta:layout", "version") == "1"
            assert await client.hget(f"{PREFIX}index:RUT", "close")
            keys = {key.removeprefix(PREFIX) async for key in client.scan_iter(f"{PREFIX}*")}
            assert {"index:RUT", "regime:RUT/SPX", "correlation:RUT~BTC"} <= keys, keys
        finally:
            await client.aclose()

        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{web_port}/ready") as response:
                ready = await response.json()
            async with session.get(f"http://127.0.0.1:{web_port}/metrics") as response:
                assert response.status == 200
                metrics = await response.text()
        assert ready["checks"]["kafka"] and ready["checks"]["redis"], ready
        assert "altseason_signals_emitted_total{" in metrics
        assert "altseason_redis_write_errors_total{" not in metrics  # the ACL allowed all
    finally:
        if worker is not None:
            stop_worker(worker)
        stack._terminate([process.pid for process in started], grace_s=10)

    # no password in anything altseason wrote
    outputs = {
        "worker log": worker_log.read_text(errors="replace"),
        "altseason topics create": created.stdout + created.stderr,
        "altseason config check": checked.stdout + checked.stderr,
        "/metrics": metrics,
        "/ready": json.dumps(ready),
        "refusals": "\n".join(refusals),
        "this process's logs": caplog.text,
        "repr(settings)": repr(settings) + str(settings),
    }
    assert f"Authenticated as {USER} via SCRAM-SHA-512" in outputs["worker log"]
    for name, text in outputs.items():
        for secret in (kafka_password, redis_password):
            assert secret not in text, f"a password leaked into the {name}"
