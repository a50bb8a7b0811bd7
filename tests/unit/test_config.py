"""Settings: defaults, YAML file, environment, validation errors naming the field, masking."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from foundation.config import Settings, SignalSettings, load_settings, masked
from foundation.errors import ConfigError


def yaml_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "altseason.yaml"
    path.write_text(text)
    return path


def test_defaults_validate() -> None:
    Settings().validate()
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.signals.correlation_pairs == ("RUT~TOTAL", "RUT~BTC", "RUT~TOTAL3", "SPX~BTC")
    assert (settings.topic("ticks"), settings.redis_key("view", "x")) == (
        "ticks", "altseason:view:x")


YAML = """\
app_id: test-app
topic_prefix: "t1."
web_port: 7001
signals:
  streak_min_days: 7
  correlation_pairs: [RUT~ETH]
  correlation_windows: [20, 60]
  correlation_high: 0.6
"""


def test_yaml_file_overrides_defaults(tmp_path: Path) -> None:
    path = yaml_file(tmp_path, YAML)
    for settings in (load_settings(path, env={}),
                     load_settings(env={"ALTSEASON_CONFIG": str(path)})):
        assert (settings.app_id, settings.topic_prefix, settings.web_port) == (
            "test-app", "t1.", 7001)
        assert settings.signals == SignalSettings(
            streak_min_days=7, correlation_pairs=("RUT~ETH",), correlation_windows=(20, 60),
            correlation_high=0.6)
        assert settings.topic("ticks") == "t1.ticks"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9093,kafka-2:9093",
        "REDIS_URL": "redis://cache:6380/2",
        "ALTSEASON_WEB_PORT": "7000",
        "ALTSEASON_SIGNALS__STREAK_MIN_DAYS": "9",
        "ALTSEASON_SIGNALS__CORRELATION_PAIRS": "RUT~TOTAL, SPX~BTC",
        "ALTSEASON_SIGNALS__CORRELATION_WINDOWS": "10,40",
        "ALTSEASON_SIGNALS__ALIGNMENT_LOOKAHEAD_HOURS": "4.5",
        "HOME": "/root",
    }
    settings = load_settings(yaml_file(tmp_path, YAML), env=env)
    assert settings.kafka_bootstrap_servers == "kafka-1:9093,kafka-2:9093"
    assert settings.redis_url == "redis://cache:6380/2"
    assert settings.web_port == 7000 and settings.app_id == "test-app"
    signals = settings.signals
    assert (signals.streak_min_days, signals.correlation_high) == (9, 0.6)
    assert signals.correlation_pairs == ("RUT~TOTAL", "SPX~BTC")
    assert signals.correlation_windows == (10, 40)
    assert signals.alignment_lookahead_hours == 4.5


SIG = "signals:\n  "
INVALID_YAML = [
    ("webport: 1", "webport: unknown setting (known: app_id,"),
    (SIG + "streak_days: 1", "signals.streak_days: unknown setting"),
    ("web_port: abc", "web_port: 'abc' is not a valid int"),
    ("topic_partitions: 2.5", "topic_partitions: 2.5 is not a valid int"),
    (SIG + "correlation_windows: [30, x]", "signals.correlation_windows: [30, 'x'] is not a "
                                           "valid tuple"),
    ("signals: 5", "signals: must be a mapping"),
    (SIG + "streak_min_days: 0", "signals.streak_min_days must be >= 1"),
    (SIG + "correlation_windows: [2, 30]", "signals.correlation_windows must be a list of "
                                           "integers >= 3"),
    (SIG + "correlation_low: 0.5", "signals.correlation_low and correlation_high must satisfy"),
    (SIG + "correlation_high: 1.5", "signals.correlation_low and correlation_high must satisfy"),
    (SIG + "correlation_hysteresis: 0.4", "signals.correlation_hysteresis must be >= 0 and "
                                          "smaller than high - low"),
    (SIG + "correlation_pairs: [RUT-BTC]", "signals.correlation_pairs: 'RUT-BTC' is not of the "
                                           "form ANCHOR~OTHER"),
    (SIG + "correlation_pairs: [RUT~RUT]", "signals.correlation_pairs: 'RUT~RUT' is not"),
    (SIG + "regime_benchmark: RUT", "signals.regime_index and regime_benchmark must differ"),
    (SIG + "alignment_max_staleness_hours: 0", "alignment_max_staleness_hours > 0"),
    ("redis_url: http://cache:6379", "redis_url 'http://cache:6379' must start with redis://"),
    ("redis_prefix: altseason", "redis_prefix 'altseason' must end with ':'"),
    ("log_level: verbose", "log_level 'verbose' must be one of crit, error, warn, info, debug"),
    ("store: s3://bucket", "store 's3://bucket' must be memory:// or rocksdb://"),
    ("web_port: 70000", "web_port 70000 is not a TCP port"),
    ("topic_partitions: 0", "topic_partitions and topic_replication_factor must be >= 1"),
    ("kafka_session_timeout_seconds: 3", "kafka_session_timeout_seconds must be between 10 and "
                                         "1800, got 3"),
    ("- web_port\n- 1", "must hold a mapping (name: value lines), not a list"),
    ("web_port: [1", "is not valid YAML"),
]


@pytest.mark.parametrize(("text", "message"), INVALID_YAML,
                         ids=[t.replace(SIG, "signals.") for t, _ in INVALID_YAML])
def test_invalid_file_value_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(yaml_file(tmp_path, text), env={})
    assert message in str(info.value)


INVALID_ENV = [
    ({"ALTSEASON_WEB_PORT": "http"}, "environment web_port: 'http' is not a valid int"),
    ({"ALTSEASON_SIGNALS__CORRELATION_HIGH": "high"},
     "environment signals.correlation_high: 'high' is not a valid float"),
    ({"ALTSEASON_SIGNALS__NOPE": "1"}, "environment signals.nope: unknown setting"),
    ({"ALTSEASON_SIGNALS__STREAK_MIN_DAYS": "0"}, "signals.streak_min_days must be >= 1"),
    ({"KAFKA_BOOTSTRAP_SERVERS": " "}, "kafka_bootstrap_servers is empty"),
    ({"REDIS_URL": "localhost:6379"}, "redis_url 'localhost:6379' must start with redis://"),
    ({"ALTSEASON_CONFIG": "/nonexistent/altseason.yaml"},
     "config file /nonexistent/altseason.yaml: No such file or directory"),
]


@pytest.mark.parametrize(("env", "message"), INVALID_ENV, ids=[m for _, m in INVALID_ENV])
def test_invalid_environment_value_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert message in str(info.value)


@pytest.mark.parametrize(("text", "field"), [
    ("web_port: true", "web_port"),
    (SIG + "streak_min_days: yes", "signals.streak_min_days"),
    (SIG + "alignment_lookahead_hours: .nan", "signals.alignment_lookahead_hours"),
    (SIG + "alignment_max_staleness_hours: .inf", "signals.alignment_max_staleness_hours"),
], ids=["web_port-true", "streak-yes", "lookahead-nan", "staleness-inf"])
def test_bool_and_non_finite_values_are_rejected(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_settings(yaml_file(tmp_path, text), env={})


def test_masked_hides_credentials_in_urls() -> None:
    settings = Settings(kafka_bootstrap_servers="SASL_SSL://svc:k-secret@broker:9092",
                        redis_url="rediss://default:r-secret@cache.example:6380/0")
    data = masked(settings)
    assert data["kafka_bootstrap_servers"] == "SASL_SSL://***@broker:9092"
    assert data["redis_url"] == "rediss://***@cache.example:6380/0"
    assert "secret" not in repr(data)
    assert data["signals"]["correlation_pairs"][:2] == ("RUT~TOTAL", "RUT~BTC")
    plain = masked(Settings())
    assert (plain["kafka_bootstrap_servers"], plain["redis_url"]) == (
        "127.0.0.1:9092", "redis://127.0.0.1:6379/0")


def test_masked_hides_a_password_containing_at_sign() -> None:
    data = masked(Settings(redis_url="redis://default:p@ssw0rd@cache:6379/0"))
    assert data["redis_url"] == "redis://***@cache:6379/0"


def test_config_check_prints_env_over_file_over_defaults_with_secrets_masked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from altseason.cli import main

    path = tmp_path / "config.yaml"
    path.write_text("log_level: error\ntopic_prefix: prod.\nsignals:\n  streak_min_days: 7\n")
    for key in [k for k in os.environ if k.startswith("ALTSEASON_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("ALTSEASON_LOG_LEVEL", "info")
    monkeypatch.setenv("REDIS_URL", "redis://app:s3cr3t-pw@cache:6379/0")
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    effective = json.loads(out)
    assert effective["log_level"] == "info"  # environment over file
    assert effective["topic_prefix"] == "prod."  # file over defaults
    assert effective["signals"]["streak_min_days"] == 7
    assert effective["web_port"] == 6066  # defaults
    assert effective["redis_url"] == "redis://***@cache:6379/0"
    assert "s3cr3t-pw" not in out

    path.write_text("dashboard_port: 99999\n")
    assert main(["config", "check", str(path)]) == 2
    assert "dashboard_port 99999 is not a TCP port" in capsys.readouterr().err


# --- security: Kafka TLS/SASL, Redis TLS, secrets from the environment or files -------------

SASL_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": "broker-1:9093",
    "ALTSEASON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "ALTSEASON_KAFKA_SASL_USERNAME": "altseason",
    "ALTSEASON_KAFKA_SASL_PASSWORD": "k-pass-123",
}


def test_security_defaults_are_plaintext() -> None:
    from foundation.connections import kafka_client_options, kafka_credentials

    settings = Settings()
    assert (settings.kafka_security_protocol, settings.kafka_sasl_mechanism) == (
        "PLAINTEXT", "SCRAM-SHA-512")
    assert kafka_client_options(settings) == {"bootstrap_servers": "127.0.0.1:9092",
                                              "security_protocol": "PLAINTEXT"}
    assert kafka_credentials(settings) is None


def test_sasl_ssl_options_for_aiokafka_and_faust_agree() -> None:
    import ssl

    import faust
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from foundation.connections import kafka_client_options, kafka_credentials

    settings = load_settings(env=SASL_ENV)
    options = kafka_client_options(settings)
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext) and context.check_hostname
    assert options == {"bootstrap_servers": "broker-1:9093", "security_protocol": "SASL_SSL",
                       "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "altseason",
                       "sasl_plain_password": "k-pass-123"}
    credentials = kafka_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert "k-pass-123" not in repr(credentials)
    faust_options = credentials_to_aiokafka_auth(credentials)
    assert isinstance(faust_options.pop("ssl_context"), ssl.SSLContext)
    assert faust_options == {k: v for k, v in options.items() if k != "bootstrap_servers"}


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SSL"])
def test_other_protocols_map_to_faust_too(protocol: str) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    from foundation.connections import kafka_client_options, kafka_credentials

    env = {**SASL_ENV, "ALTSEASON_KAFKA_SECURITY_PROTOCOL": protocol,
           "ALTSEASON_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"}
    settings = load_settings(env=env)
    options = kafka_client_options(settings)
    faust_options = credentials_to_aiokafka_auth(kafka_credentials(settings))
    assert faust_options["security_protocol"] == options["security_protocol"] == protocol
    tls = [o.get("ssl_context") is not None for o in (options, faust_options)]
    assert tls == [protocol == "SSL"] * 2
    if protocol == "SASL_PLAINTEXT":
        assert faust_options["sasl_mechanism"] == options["sasl_mechanism"] == "SCRAM-SHA-256"
    else:
        assert "sasl_plain_password" not in options


def test_secrets_are_read_from_mounted_files(tmp_path: Path) -> None:
    password = tmp_path / "kafka-password"
    password.write_text("from-a-file\n")
    url = tmp_path / "redis-url"
    url.write_text("rediss://app:r-pass@cache:6380/0\r\n")
    env = {**SASL_ENV, "ALTSEASON_KAFKA_SASL_PASSWORD_FILE": str(password),
           "REDIS_URL_FILE": str(url)}
    del env["ALTSEASON_KAFKA_SASL_PASSWORD"]
    settings = load_settings(env=env)
    assert settings.kafka_sasl_password == "from-a-file"  # trailing newline stripped
    assert settings.redis_url == "rediss://app:r-pass@cache:6380/0"
    other = load_settings(env={"ALTSEASON_REDIS_URL_FILE": str(url)})
    assert other.redis_url == settings.redis_url


@pytest.mark.parametrize(("env", "message"), [
    ({"ALTSEASON_KAFKA_SASL_PASSWORD_FILE": "/run/secrets/nope"},
     "environment ALTSEASON_KAFKA_SASL_PASSWORD_FILE: cannot read /run/secrets/nope "
     "(No such file or directory)"),
    ({"REDIS_URL_FILE": "/run/secrets/nope"}, "environment REDIS_URL_FILE: cannot read"),
    ({"ALTSEASON_KAFKA_SASL_PASSWORD": "x", "ALTSEASON_KAFKA_SASL_PASSWORD_FILE": "/etc/hostname"},
     "ALTSEASON_KAFKA_SASL_PASSWORD and ALTSEASON_KAFKA_SASL_PASSWORD_FILE are both set"),
], ids=["missing-password-file", "missing-url-file", "both"])
def test_a_bad_secret_file_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={**SASL_ENV, **env} if "ALTSEASON_KAFKA_SASL_PASSWORD" in env else env)
    assert message in str(info.value)


@pytest.mark.parametrize(("text", "message"), [
    ("kafka_sasl_password: hunter2-pw",
     "kafka_sasl_password: secrets never go in the config file; set the environment variable "
     "ALTSEASON_KAFKA_SASL_PASSWORD, or mount a file and name it in "
     "ALTSEASON_KAFKA_SASL_PASSWORD_FILE"),
    ("redis_url: rediss://app:hunter2-pw@cache:6380/0",
     "redis_url: a URL with credentials never goes in the config file; set the environment "
     "variable REDIS_URL, or mount a file and name it in REDIS_URL_FILE"),
    ("redis_url: redis://cache:6379/0?password=hunter2-pw", "redis_url: a URL with credentials"),
], ids=["password", "url-userinfo", "url-query"])
def test_a_secret_in_the_yaml_file_is_rejected(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(yaml_file(tmp_path, text), env={})
    assert message in str(info.value)
    assert "hunter2-pw" not in str(info.value)


def test_security_settings_in_the_yaml_file_without_secrets(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read until a client connects\n")
    text = (f"kafka_security_protocol: SASL_SSL\nkafka_sasl_mechanism: SCRAM-SHA-256\n"
            f"kafka_sasl_username: svc\nkafka_ssl_cafile: {ca}\nredis_ssl_ca_certs: {ca}\n")
    settings = load_settings(yaml_file(tmp_path, text), env={
        "ALTSEASON_KAFKA_SASL_PASSWORD": "pw", "REDIS_URL": "rediss://u:pw@cache:6380/0"})
    assert (settings.kafka_sasl_mechanism, settings.kafka_sasl_username,
            settings.kafka_ssl_cafile, settings.redis_ssl_ca_certs) == (
        "SCRAM-SHA-256", "svc", str(ca), str(ca))


INVALID_SECURITY = [
    ({"ALTSEASON_KAFKA_SECURITY_PROTOCOL": "TLS"},
     "kafka_security_protocol 'TLS' must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    ({"ALTSEASON_KAFKA_SASL_MECHANISM": "GSSAPI"},
     "kafka_sasl_mechanism 'GSSAPI' must be one of SCRAM-SHA-512, SCRAM-SHA-256, PLAIN"),
    ({"ALTSEASON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
     "kafka_security_protocol SASL_SSL needs kafka_sasl_username and kafka_sasl_password"),
    ({"ALTSEASON_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
      "ALTSEASON_KAFKA_SASL_USERNAME": "svc"},
     "kafka_security_protocol SASL_PLAINTEXT needs kafka_sasl_username and kafka_sasl_password"),
    ({"ALTSEASON_KAFKA_SSL_CAFILE": "/etc/hostname"},
     "kafka_ssl_cafile is set but kafka_security_protocol PLAINTEXT does not use TLS"),
    ({"ALTSEASON_KAFKA_SECURITY_PROTOCOL": "SSL", "ALTSEASON_KAFKA_SSL_CAFILE": "/nope/ca.pem"},
     "kafka_ssl_cafile: /nope/ca.pem is not a readable file"),
    ({"ALTSEASON_KAFKA_SECURITY_PROTOCOL": "SSL", "ALTSEASON_KAFKA_SSL_CERTFILE": "/etc/hostname"},
     "kafka_ssl_certfile and kafka_ssl_keyfile go together"),
    ({"ALTSEASON_REDIS_SSL_CA_CERTS": "/etc/hostname"},
     "redis_ssl_ca_certs is set but redis_url is not a rediss:// (TLS) URL"),
    ({"REDIS_URL": "http://app:s3cr3t@cache:6379"},
     "redis_url 'http://***@cache:6379' must start with redis://"),
]


@pytest.mark.parametrize(("env", "message"), INVALID_SECURITY, ids=[m for _, m in INVALID_SECURITY])
def test_invalid_security_settings_name_the_field(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert message in str(info.value)
    assert "s3cr3t" not in str(info.value)


def test_repr_masked_and_config_check_never_show_the_secrets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from altseason.cli import main

    settings = load_settings(env={**SASL_ENV, "REDIS_URL": "rediss://app:r-pass-456@cache:6380/0"})
    for shown in (repr(settings), str(settings), f"{settings!r}", repr([settings]),
                  json.dumps(masked(settings), default=str)):
        assert "k-pass-123" not in shown and "r-pass-456" not in shown
        assert "altseason" in shown and "cache:6380" in shown
    data = masked(settings)
    assert (data["kafka_sasl_password"], data["redis_url"]) == (
        "***", "rediss://***@cache:6380/0")
    assert masked(Settings())["kafka_sasl_password"] == ""
    assert "kafka_sasl_password='***'" in repr(settings)

    password = tmp_path / "kafka-password"
    password.write_text("k-file-789\n")
    for key in [k for k in os.environ if k.startswith(("ALTSEASON_", "KAFKA_", "REDIS_"))]:
        monkeypatch.delenv(key)
    for key, value in {**SASL_ENV, "REDIS_URL": "rediss://app:r-pass-456@cache:6380/0"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ALTSEASON_KAFKA_SASL_PASSWORD")
    monkeypatch.setenv("ALTSEASON_KAFKA_SASL_PASSWORD_FILE", str(password))
    assert main(["config", "check"]) == 0
    captured = capsys.readouterr()
    effective = json.loads(captured.out)
    assert effective["kafka_sasl_password"] == "***"
    assert effective["kafka_security_protocol"] == "SASL_SSL"
    assert "k-file-789" not in captured.out + captured.err
    assert "r-pass-456" not in captured.out + captured.err


def test_redis_client_checks_the_server_certificate_with_the_configured_ca(
        tmp_path: Path) -> None:
    from foundation.connections import redis_client

    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    settings = Settings(redis_url="rediss://app:pw@cache:6380/0", redis_ssl_ca_certs=str(ca))
    client = redis_client(settings, decode_responses=True)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["ssl_ca_certs"], kwargs["username"], kwargs["decode_responses"]) == (
        str(ca), "app", True)
    plain = redis_client(Settings()).connection_pool.connection_kwargs
    assert "ssl_ca_certs" not in plain


def test_a_ca_file_that_is_not_pem_is_a_config_error(tmp_path: Path) -> None:
    from foundation.connections import kafka_client_options

    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    settings = load_settings(env={**SASL_ENV, "ALTSEASON_KAFKA_SSL_CAFILE": str(ca)})
    with pytest.raises(ConfigError, match="kafka_ssl_cafile, kafka_ssl_certfile"):
        kafka_client_options(settings)
