"""The project's one error hierarchy: every message says what was wrong and what to do."""


class AltseasonError(Exception):
    """Base of every error altseason raises on purpose."""


class ConfigError(AltseasonError):
    """A configuration value (file, environment variable or CLI flag) is invalid."""


class SourceError(AltseasonError):
    """An outside source (Kafka, Redis, an exchange, a file, a local process) failed."""


class StackError(SourceError):
    """The local stack (Kafka broker, redis-server) could not be started or reached."""


class SchemaError(AltseasonError):
    """An event does not match its topic's schema; it goes to the dead-letter topic."""


class EventOrderError(SchemaError):
    """An event is older than, or a duplicate of, one already applied for the same series."""
