"""pyllama.server: llama-server's HTTP API as a Flask app (run under gevent)."""

from .app import create_app

__all__ = ["create_app"]
