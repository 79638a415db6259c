"""The version of pyllama: its one source (pyproject.toml, the native module and the commands read it)."""

__version__ = "0.1.0"
