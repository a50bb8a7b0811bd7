"""One explicit configuration object: defaults, overridden by a YAML file, overridden by env vars.

Environment: ``KAFKA_BOOTSTRAP_SERVERS`` and ``REDIS_URL`` (as printed by ``altseason stack
status --env``), ``ALTSEASON_CONFIG`` (path of the YAML file) and ``ALTSEASON_<FIELD>`` for
every top-level field below (``ALTSEASON_SIGNALS__<FIELD>`` for the signal thresholds). Each of
these top-level variables can instead name a file to read the value from (a mounted secret):
``<VARIABLE>_FILE``, e.g. ``ALTSEASON_KAFKA_SASL_PASSWORD_FILE=/run/secrets/kafka-password``.
Secrets (``kafka_sasl_password``, a password in ``redis_url``) come only from the environment
or such files, never from the YAML file, and are masked wherever settings are shown.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from foundation.errors import ConfigError

ENV_PREFIX = "ALTSEASON_"
VARIANTS = ("global_account", "top_account", "top_position", "taker_volume")
SCORE_COMPONENTS = ("index_ath", "relative_strength", "correlation", "long_bias",
                    "accumulation", "breadth")
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
#: settings that are secrets: from the environment or a mounted file only, always masked
SECRET_FIELDS = ("kafka_sasl_password",)
#: settings that are URLs which may carry credentials (masked when shown)
URL_FIELDS = ("kafka_bootstrap_servers", "redis_url")
#: variables read without the ALTSEASON_ prefix, and the settings they set
PLAIN_ENV = {"KAFKA_BOOTSTRAP_SERVERS": "kafka_bootstrap_servers", "REDIS_URL": "redis_url"}
MASK = "***"
_PASSWORD_PARAM = re.compile(r"(?i)([?&]password=)[^&#]*")


@dataclass(frozen=True)
class SignalSettings:
    """Thresholds and windows of the signal catalogue (README: "Signal catalogue")."""

    #: index whose regime is tracked, and the benchmark it is compared with
    regime_index: str = "RUT"
    regime_benchmark: str = "SPX"
    #: a new all-time high is a breakout when the previous one is at least this many days old
    ath_breakout_min_gap_days: int = 30
    #: no breakout is signalled before the index has this much history (the data may start
    #: below an older record)
    ath_min_history_days: int = 730
    #: an outperformance streak is signalled from this length on, and on every extension
    streak_min_days: int = 5
    #: an index close within this fraction of its all-time high counts as "at highs"
    risk_on_max_pct_from_ath: float = 0.03
    #: sessions over which the index's return is compared with the benchmark's
    relative_strength_days: int = 20
    #: a risk_on_rotation (or a correlation regime change of the same pair and window) is not
    #: signalled again within this many days
    risk_on_cooldown_days: float = 30.0
    correlation_cooldown_days: float = 10.0
    #: correlation pairs as "ANCHOR~OTHER"; the anchor is the series on the sparser calendar
    #: (TOTAL3 = total crypto market cap minus BTC and ETH, the altcoin basket)
    correlation_pairs: tuple[str, ...] = ("RUT~TOTAL", "RUT~BTC", "RUT~TOTAL3", "SPX~BTC")
    #: rolling windows, in aligned daily points
    correlation_windows: tuple[int, ...] = (30, 90)
    #: regime bands: "coupled" at or above high, "decoupled" at or below low
    correlation_high: float = 0.5
    correlation_low: float = 0.1
    #: a regime is left only once the value is this far back across the threshold
    correlation_hysteresis: float = 0.1
    #: also correlate price levels (labelled "levels"; trending series correlate spuriously)
    correlation_levels: bool = True
    #: pair an anchor close with the other series' last value up to this many hours after it
    #: (a crypto day closes at 00:00 UTC, 4-5 h after the 16:00 New York close, and
    #: CoinMarketCap's daily snapshot lands at about 01:20-02:40 UTC)
    alignment_lookahead_hours: float = 7.0
    #: ...and no older than this, else the anchor point is skipped
    alignment_max_staleness_hours: float = 96.0
    #: the exchange whose ticks make the crypto price series used in correlations
    reference_exchange: str = "replay"
    #: index symbols accepted on the index-quotes topic
    index_symbols: tuple[str, ...] = ("RUT", "SPX", "IWM", "SPY")
    #: market-cap assets that are aggregates (their own series), not coins
    aggregate_assets: tuple[str, ...] = ("TOTAL", "TOTAL2", "TOTAL3")
    #: not altcoins: excluded from the long/short cross-section and the drawdown breadth
    non_altcoins: tuple[str, ...] = ("BTC", "USDT", "USDC", "DAI", "FDUSD", "TUSD")

    #: OHLCV bar intervals in seconds (1m, 1h, 1d); a tick later than this many seconds
    #: after its bar's end is dead-lettered as late
    bar_intervals: tuple[int, ...] = (60, 3600, 86400)
    bar_allowed_lateness_seconds: float = 10.0

    #: long/short: the variant of the cross-section and the score's long bias
    longshort_variant: str = "global_account"
    #: a coin's ratio is in the cross-section while younger than this
    longshort_max_age_hours: float = 26.0
    #: crowding z-score of a coin's ratio against its last longshort_window snapshots
    longshort_window: int = 336
    longshort_min_periods: int = 48
    longshort_crowding_z: float = 2.5
    #: ...only for ratios above this (long crowding, not short)
    longshort_crowding_min_ratio: float = 1.5
    longshort_cooldown_hours: float = 24.0

    #: netflow windows in days; the signal window and its flow-imbalance thresholds
    #: (netflow / (inflow + outflow): -1 = all outflow)
    netflow_windows_days: tuple[int, ...] = (1, 7, 30)
    netflow_signal_window_days: int = 7
    netflow_imbalance: float = 0.1
    netflow_hysteresis: float = 0.03
    netflow_cooldown_hours: float = 72.0

    #: drawdown breadth: an altcoin this far below its all-time high is "deep down"
    drawdown_deep: float = 0.8

    #: altseason score: component weights ("name=weight"), bands and their hysteresis
    score_weights: tuple[str, ...] = (
        "index_ath=0.25", "relative_strength=0.20", "correlation=0.15", "long_bias=0.15",
        "accumulation=0.15", "breadth=0.10",
    )
    #: the correlation that feeds the score as "PAIR:WINDOW"; empty = the first pair at its
    #: longest window
    score_correlation: str = ""
    score_warming: float = 50.0
    score_altseason: float = 75.0
    score_hysteresis: float = 8.0
    score_cooldown_hours: float = 168.0
    #: a component older than this (against the newest) drops out of the score
    score_max_age_days: float = 7.0

    @property
    def score_correlation_target(self) -> tuple[str, int]:
        """(pair, window) of the correlation that feeds the score."""
        if not self.score_correlation:
            return self.correlation_pairs[0], max(self.correlation_windows)
        pair, _, window = self.score_correlation.rpartition(":")
        return pair, int(window) if window.isdigit() else -1

    @property
    def score_weight_map(self) -> dict[str, float]:
        """``score_weights`` as a mapping (raises ValueError when malformed)."""
        return {k.strip(): float(v) for k, v in (item.split("=", 1) for item in self.score_weights)}

    def validate(self) -> None:
        if self.ath_breakout_min_gap_days < 0:
            raise ConfigError("signals.ath_breakout_min_gap_days must be >= 0")
        if self.ath_min_history_days < 0:
            raise ConfigError("signals.ath_min_history_days must be >= 0")
        if self.streak_min_days < 1:
            raise ConfigError("signals.streak_min_days must be >= 1")
        if not self.correlation_windows or any(w < 3 for w in self.correlation_windows):
            raise ConfigError("signals.correlation_windows must be a list of integers >= 3")
        for pair in self.correlation_pairs:
            parts = pair.split("~")
            if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
                raise ConfigError(
                    f"signals.correlation_pairs: {pair!r} is not of the form ANCHOR~OTHER"
                )
        if not -1.0 <= self.correlation_low < self.correlation_high <= 1.0:
            raise ConfigError(
                "signals.correlation_low and correlation_high must satisfy -1 <= low < high <= 1"
            )
        if not 0.0 <= self.correlation_hysteresis < (self.correlation_high - self.correlation_low):
            raise ConfigError(
                "signals.correlation_hysteresis must be >= 0 and smaller than high - low"
            )
        if self.alignment_lookahead_hours < 0 or self.alignment_max_staleness_hours <= 0:
            raise ConfigError(
                "signals.alignment_lookahead_hours must be >= 0 and "
                "alignment_max_staleness_hours > 0"
            )
        if self.regime_index == self.regime_benchmark:
            raise ConfigError("signals.regime_index and regime_benchmark must differ")
        positive = ("risk_on_max_pct_from_ath", "relative_strength_days", "longshort_max_age_hours",
                    "longshort_window", "longshort_min_periods", "longshort_crowding_z",
                    "netflow_signal_window_days", "netflow_imbalance", "drawdown_deep",
                    "score_max_age_days", "bar_allowed_lateness_seconds")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"signals.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("risk_on_cooldown_days", "correlation_cooldown_days",
                     "longshort_cooldown_hours", "netflow_cooldown_hours",
                     "score_cooldown_hours", "netflow_hysteresis", "score_hysteresis"):
            if getattr(self, name) < 0:
                raise ConfigError(f"signals.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.longshort_min_periods > self.longshort_window:
            raise ConfigError("signals.longshort_min_periods must be <= longshort_window")
        if self.drawdown_deep >= 1 or self.risk_on_max_pct_from_ath >= 1:
            raise ConfigError("signals.drawdown_deep and risk_on_max_pct_from_ath must be < 1")
        if self.netflow_hysteresis >= self.netflow_imbalance or self.netflow_imbalance >= 1:
            raise ConfigError("signals.netflow_hysteresis must be < netflow_imbalance < 1")
        if self.netflow_signal_window_days not in self.netflow_windows_days:
            raise ConfigError("signals.netflow_signal_window_days must be one of "
                              "netflow_windows_days")
        if not self.bar_intervals or any(i < 1 or 86400 % i for i in self.bar_intervals):
            raise ConfigError("signals.bar_intervals must be seconds dividing a day, e.g. 60")
        if self.longshort_variant not in VARIANTS:
            raise ConfigError(f"signals.longshort_variant must be one of {', '.join(VARIANTS)}")
        try:
            weights = self.score_weight_map
        except ValueError:
            raise ConfigError("signals.score_weights must be a list of name=weight") from None
        unknown = set(weights) - set(SCORE_COMPONENTS)
        if unknown or any(not (w >= 0 and math.isfinite(w)) for w in weights.values()) \
                or not sum(weights.values()) > 0:
            raise ConfigError(
                f"signals.score_weights: components are {', '.join(SCORE_COMPONENTS)}, "
                f"weights >= 0 with a positive sum (got {', '.join(self.score_weights)})")
        pair, window = self.score_correlation_target
        if pair not in self.correlation_pairs or window not in self.correlation_windows:
            raise ConfigError("signals.score_correlation must be PAIR:WINDOW of a configured "
                              f"correlation pair and window, got {self.score_correlation!r}")
        if not 0 < self.score_warming < self.score_altseason <= 100 \
                or self.score_hysteresis >= self.score_warming:
            raise ConfigError("signals.score_warming and score_altseason must satisfy "
                              "0 < warming < altseason <= 100, hysteresis < warming")


@dataclass(frozen=True)
class Settings:
    """Where altseason connects, how it names things, and its thresholds."""

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Faust application id: consumer group and prefix of its internal topics
    app_id: str = "altseason"
    #: prepended to every topic name (isolates tests and tenants on one broker)
    topic_prefix: str = ""
    #: prepended to every Redis key and channel
    redis_prefix: str = "altseason:"
    #: partitions of the topics altseason creates
    topic_partitions: int = 3
    topic_replication_factor: int = 1
    #: table store: memory:// (tests, dev) or rocksdb:// (production)
    store: str = "memory://"
    datadir: str = ".stack/worker"
    #: the worker's web server: /health, /ready, /metrics (0 = no web server)
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    #: the live producers' web server: /health, /ready, /metrics (0 = none)
    producer_web_host: str = "127.0.0.1"
    producer_web_port: int = 6067
    #: the dashboard (``altseason dashboard``)
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8080
    log_level: str = "warn"
    #: json (one object per line), text, or auto (text on a terminal, else json)
    log_format: str = "auto"
    #: how often the worker checks that Redis still holds its views (rebuilt after a flush)
    redis_check_seconds: float = 5.0
    #: how often the worker writes the open-bar views of the symbols that ticked meanwhile
    #: (their latest state; 0 = a write per tick)
    bar_view_flush_seconds: float = 0.02
    #: a fan-in view (score, drawdowns, netflows, long/short) holds an event until every
    #: source has passed its time; a source silent this long no longer holds it back
    fan_in_max_wait_seconds: float = 10.0
    #: how long the consumer group waits for a silent worker (killed, hung, cut off) before
    #: its partitions move to the others, and before a restarted worker can rejoin (Faust's
    #: default; the broker allows 6 to 1800 by default)
    kafka_session_timeout_seconds: float = 60.0
    #: Kafka client security (README "Security"): PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
    kafka_security_protocol: str = "PLAINTEXT"
    #: SASL mechanism for the SASL_* protocols: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    #: secret: ALTSEASON_KAFKA_SASL_PASSWORD or ALTSEASON_KAFKA_SASL_PASSWORD_FILE only
    kafka_sasl_password: str = field(default="", repr=False)
    #: CA bundle (PEM) that signed the brokers' certificates (SSL, SASL_SSL); empty = the
    #: system's CAs
    kafka_ssl_cafile: str = ""
    #: client certificate and its unencrypted key (PEM), for brokers that require one
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    #: CA bundle (PEM) that signed the Redis server's certificate (rediss:// URLs); empty =
    #: the system's CAs
    redis_ssl_ca_certs: str = ""
    signals: SignalSettings = field(default_factory=SignalSettings)

    def __repr__(self) -> str:
        """Like the dataclass repr, with secrets and URL credentials masked (safe to log)."""
        shown = masked_fields(self)
        return f"Settings({', '.join(f'{k}={shown[k]!r}' for k in shown)})"

    def validate(self) -> None:
        if not self.kafka_bootstrap_servers.strip():
            raise ConfigError("kafka_bootstrap_servers is empty")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"redis_url {mask_url(self.redis_url)!r} must start with redis://, rediss:// "
                "or unix://"
            )
        if not self.redis_prefix.endswith(":"):
            raise ConfigError(f"redis_prefix {self.redis_prefix!r} must end with ':'")
        if self.topic_partitions < 1 or self.topic_replication_factor < 1:
            raise ConfigError("topic_partitions and topic_replication_factor must be >= 1")
        for name in ("web_port", "producer_web_port", "dashboard_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ConfigError(f"{name} {getattr(self, name)} is not a TCP port")
        if self.log_format not in ("auto", "json", "text"):
            raise ConfigError(f"log_format {self.log_format!r} must be one of auto, json, text")
        if self.log_level not in ("crit", "error", "warn", "info", "debug"):
            raise ConfigError(
                f"log_level {self.log_level!r} must be one of crit, error, warn, info, debug"
            )
        if not self.redis_check_seconds > 0:
            raise ConfigError(f"redis_check_seconds must be > 0, got {self.redis_check_seconds}")
        if not 0 < self.fan_in_max_wait_seconds <= 3600:
            raise ConfigError("fan_in_max_wait_seconds must be > 0 and at most 3600, got "
                              f"{self.fan_in_max_wait_seconds}")
        if not 0 <= self.bar_view_flush_seconds <= 60:
            raise ConfigError("bar_view_flush_seconds must be between 0 and 60, got "
                              f"{self.bar_view_flush_seconds}")
        if not 10 <= self.kafka_session_timeout_seconds <= 1800:  # heartbeats are every 3 s
            raise ConfigError("kafka_session_timeout_seconds must be between 10 and 1800, got "
                              f"{self.kafka_session_timeout_seconds}")
        if not self.store.startswith(("memory://", "rocksdb://")):
            raise ConfigError(f"store {self.store!r} must be memory:// or rocksdb://")
        self._validate_security()
        self.signals.validate()

    def _validate_security(self) -> None:
        protocol = self.kafka_security_protocol
        if protocol not in KAFKA_SECURITY_PROTOCOLS:
            raise ConfigError(f"kafka_security_protocol {protocol!r} must be one of "
                              f"{', '.join(KAFKA_SECURITY_PROTOCOLS)}")
        if self.kafka_sasl_mechanism not in KAFKA_SASL_MECHANISMS:
            raise ConfigError(f"kafka_sasl_mechanism {self.kafka_sasl_mechanism!r} must be one "
                              f"of {', '.join(KAFKA_SASL_MECHANISMS)}")
        if protocol.startswith("SASL_") and not (self.kafka_sasl_username
                                                 and self.kafka_sasl_password):
            raise ConfigError(
                f"kafka_security_protocol {protocol} needs kafka_sasl_username and "
                "kafka_sasl_password (the password from ALTSEASON_KAFKA_SASL_PASSWORD or a file "
                "named by ALTSEASON_KAFKA_SASL_PASSWORD_FILE)")
        tls_files = ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
        for name in tls_files:
            if getattr(self, name) and protocol not in ("SSL", "SASL_SSL"):
                raise ConfigError(f"{name} is set but kafka_security_protocol {protocol} does "
                                  "not use TLS (SSL or SASL_SSL)")
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ConfigError("kafka_ssl_certfile and kafka_ssl_keyfile go together")
        if self.redis_ssl_ca_certs and not self.redis_url.startswith("rediss://"):
            raise ConfigError("redis_ssl_ca_certs is set but redis_url is not a rediss:// "
                              "(TLS) URL")
        for name in (*tls_files, "redis_ssl_ca_certs"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ConfigError(f"{name}: {path} is not a readable file")

    def topic(self, name: str) -> str:
        """The full name of one of altseason's topics."""
        return f"{self.topic_prefix}{name}"

    def redis_key(self, *parts: str) -> str:
        """The full name of a Redis key or channel."""
        return self.redis_prefix + ":".join(parts)


def _coerce(value: Any, target: Any, name: str) -> Any:
    """Convert a YAML or environment value to the type of the field's default."""
    try:
        if isinstance(target, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(target, tuple):
            items = value.split(",") if isinstance(value, str) else list(value)
            kind = type(target[0]) if target else str
            return tuple(kind(item.strip() if isinstance(item, str) else item) for item in items)
        if isinstance(value, bool) or (isinstance(target, int) and isinstance(value, float)):
            raise ValueError(value)
        converted = type(target)(value)
        if isinstance(converted, float) and not math.isfinite(converted):
            raise ValueError(value)
        return converted
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name}: {value!r} is not a valid {type(target).__name__}"
        ) from None


def _apply(obj: Any, values: Mapping[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{where}{key}"
        if key not in known:
            raise ConfigError(f"{name}: unknown setting (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{name}: must be a mapping")
            changes[key] = _apply(current, value, f"{name}.")
        else:
            changes[key] = _coerce(value, current, name)
    return dataclasses.replace(obj, **changes)


def read_yaml_mapping(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The mapping a YAML file holds (an empty file holds an empty one); ConfigError naming
    ``what`` and the file otherwise: unreadable, not YAML, or not a mapping."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} {path} must hold a mapping (name: value lines), "
                          f"not a {type(data).__name__}")
    return dict(data)


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Build and validate the settings; raises ConfigError naming the bad field."""
    env = os.environ if env is None else env
    settings = Settings()
    path = path or env.get(f"{ENV_PREFIX}CONFIG")
    if path:
        data = read_yaml_mapping(path, "config file")
        _reject_secrets(data)
        settings = _apply(settings, data, "")
    overrides: dict[str, Any] = {}
    signal_overrides: dict[str, Any] = {}
    for key, value in _read_secret_files(env).items():
        if key in PLAIN_ENV:
            overrides[PLAIN_ENV[key]] = value
        elif key.startswith(f"{ENV_PREFIX}SIGNALS__"):
            signal_overrides[key.removeprefix(f"{ENV_PREFIX}SIGNALS__").lower()] = value
        elif key.startswith(ENV_PREFIX) and key not in (f"{ENV_PREFIX}CONFIG",):
            name = key.removeprefix(ENV_PREFIX).lower()
            if name in {f.name for f in dataclasses.fields(Settings)} and name != "signals":
                overrides[name] = value
    if signal_overrides:
        overrides["signals"] = signal_overrides
    settings = _apply(settings, overrides, "environment ")
    settings.validate()
    return settings


def _env_names(field_name: str) -> list[str]:
    """The environment variables that set a top-level field."""
    plain = [key for key, name in PLAIN_ENV.items() if name == field_name]
    return [*plain, f"{ENV_PREFIX}{field_name.upper()}"]


def _reject_secrets(data: Mapping[str, Any]) -> None:
    """Secrets never go in the YAML file (it is committed, mounted from a ConfigMap...)."""
    for name in SECRET_FIELDS:
        if data.get(name) not in (None, ""):
            env = _env_names(name)[-1]
            raise ConfigError(f"{name}: secrets never go in the config file; set the environment "
                              f"variable {env}, or mount a file and name it in {env}_FILE")
    for name in URL_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and mask_url(value) != value:
            env = _env_names(name)[0]
            raise ConfigError(f"{name}: a URL with credentials never goes in the config file; "
                              f"set the environment variable {env}, or mount a file and name "
                              f"it in {env}_FILE")


def _read_secret_files(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with each ``<VARIABLE>_FILE`` of a top-level setting replaced by ``<VARIABLE>`` =
    the file's text without its trailing newline (Docker and Kubernetes secrets as files)."""
    variables = {name for f in dataclasses.fields(Settings) if f.name != "signals"
                 for name in _env_names(f.name)}
    resolved = dict(env)
    for key, path in env.items():
        variable = key.removesuffix("_FILE")
        if variable == key or variable not in variables:
            continue
        if variable in env:
            raise ConfigError(f"environment {variable} and {key} are both set; set only one")
        try:
            resolved[variable] = Path(path).read_text().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not a text file"
            raise ConfigError(f"environment {key}: cannot read {path} ({reason})") from None
        del resolved[key]
    return resolved


def mask_url(value: str) -> str:
    """``value`` with the credentials of a URL (``user:password@``, ``?password=``) masked."""
    if "@" in value:
        scheme, _, rest = value.rpartition("//")
        value = f"{scheme}//{MASK}@{rest.rsplit('@', 1)[1]}"
    return _PASSWORD_PARAM.sub(rf"\1{MASK}", value)


def masked_fields(settings: Settings) -> dict[str, Any]:
    """The top-level settings by name, secrets and URL credentials masked (signals as is)."""
    shown = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    for name in SECRET_FIELDS:
        shown[name] = MASK if shown[name] else ""
    for name in URL_FIELDS:
        shown[name] = mask_url(str(shown[name]))
    return shown


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, with secrets and credentials in URLs masked."""
    data = masked_fields(settings)
    data["signals"] = dataclasses.asdict(settings.signals)
    return data
