"""The version of pyllama: its one source (pyproject.toml, the native module and the commands read it)."""

__version__ = "0.1.0"

# /props' build_info, in llama-server's shape "b<build>-<commit>": the version for the build,
# the project for the commit (llama.cpp built outside git says "b0-unknown")
BUILD_INFO = f"b{__version__}-pyllama"
