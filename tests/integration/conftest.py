"""Integration tests run on the real Kafka broker and redis-server of the local stack.

Their fixtures (``stack_env``, ``namespace``, ``redis_client``, ``workers``) live in
``tests/conftest.py``, shared with the browser tests.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration
