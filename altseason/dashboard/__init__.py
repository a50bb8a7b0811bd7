"""The reference live dashboard: the Redis views on one page, updated over a websocket."""

from altseason.dashboard.server import create_app, serve_dashboard

__all__ = ["create_app", "serve_dashboard"]
