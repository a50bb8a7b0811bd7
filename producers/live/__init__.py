"""Live producers: exchange websockets and REST pollers, normalised onto the input topics.

``core`` is the contract every source codes against (``Source``, ``Emitter``, ``SourceStats``,
backoff, watchdog, config reading); ``sink`` is the Kafka side; ``registry`` maps a config
``type:`` to a source factory; ``run`` is ``altseason produce live``.
"""
