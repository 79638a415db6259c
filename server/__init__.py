"""pyllama.server: llama-server's HTTP API as a Flask app (run under gevent).

create_app is imported on first use, so that the command line (cli.py) can read
its flags, and patch gevent, before Flask and the app are imported."""

__all__ = ["create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app
        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
