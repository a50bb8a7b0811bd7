"""The ground floor: configuration, errors, connections, logs and metrics. It imports nothing
above it (``schemas``, ``streams``, ``agents``, ``producers`` and ``altseason`` build on it)."""
