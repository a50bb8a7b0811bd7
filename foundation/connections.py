"""How every client connects to Kafka and Redis: TLS and credentials from the settings.

Every aiokafka client takes ``**kafka_client_options(settings)``, the Faust app
``broker_credentials=kafka_credentials(settings)``, and every Redis client comes from
``redis_client(settings)`` (README "Security").
"""

from __future__ import annotations

import ssl
from typing import Any

import redis.asyncio as redis
from aiokafka.helpers import create_ssl_context

from foundation.config import Settings
from foundation.errors import ConfigError


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the SSL and SASL_SSL protocols (hostnames checked), else None."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    try:
        return create_ssl_context(cafile=settings.kafka_ssl_cafile or None,
                                  certfile=settings.kafka_ssl_certfile or None,
                                  keyfile=settings.kafka_ssl_keyfile or None)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            "kafka_ssl_cafile, kafka_ssl_certfile, kafka_ssl_keyfile: not usable PEM files "
            f"({exc}); the CA bundle and certificate must be PEM, the key unencrypted"
        ) from None


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of every aiokafka client (producer, consumer, admin): bootstrap
    servers, security protocol, TLS context and SASL credentials."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap_servers,
                               "security_protocol": protocol}
    context = kafka_ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol.startswith("SASL_"):
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                       sasl_plain_username=settings.kafka_sasl_username,
                       sasl_plain_password=settings.kafka_sasl_password)
    return options


def kafka_credentials(settings: Settings) -> Any:
    """The Faust app's ``broker_credentials`` (``faust.SASLCredentials`` or
    ``faust.SSLCredentials``); None for PLAINTEXT. Faust's aiokafka driver turns them into
    the same options as ``kafka_client_options``."""
    import faust  # here: only the worker needs Faust

    protocol = settings.kafka_security_protocol
    context = kafka_ssl_context(settings)
    if protocol.startswith("SASL_"):
        # with an ssl_context Faust uses SASL_SSL, without SASL_PLAINTEXT
        return faust.SASLCredentials(username=settings.kafka_sasl_username,
                                     password=settings.kafka_sasl_password,
                                     mechanism=settings.kafka_sasl_mechanism,
                                     ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def redis_client(settings: Settings, **kwargs: Any) -> redis.Redis:
    """An asyncio Redis client for ``redis_url`` (credentials in the URL; for ``rediss://``
    the server's certificate checked against ``redis_ssl_ca_certs``)."""
    if settings.redis_url.startswith("rediss://") and settings.redis_ssl_ca_certs:
        kwargs.setdefault("ssl_ca_certs", settings.redis_ssl_ca_certs)
    client: redis.Redis = redis.from_url(settings.redis_url, **kwargs)
    return client
