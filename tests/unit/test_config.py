"""Settings: defaults, YAML file, environment, validation errors naming the field, masking."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from altseason.config import Settings, SignalSettings, load_settings, masked
from altseason.errors import ConfigError


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
    ("- web_port\n- 1", "must hold a mapping of settings"),
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
