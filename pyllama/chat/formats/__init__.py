"""The chat formats, and which one a template gets (llama.cpp's `common_chat_templates_apply_jinja`).

Detection reads the template source, in llama.cpp's order; some formats are skipped
when a response_format schema comes with the tools (the generic JSON format handles
that mix), and templates with no tool syntax get the generic format when there are
tools and plain content otherwise.

Differences from llama-server's list: Seed-OSS, Nemotron v2/v3, Apertus, LFM2,
Xiaomi MiMo and Apriel 1.5 are not implemented (no template of theirs is among the
test data, and the issue does not ask for them): their templates get the generic
format. Ministral 3 has its own name where llama.cpp reports "peg-native"."""

from __future__ import annotations

from .base import ChatFormat, ToolGrammar, ToolSpec
from .command_r7b import CommandR7B
from .deepseek import DeepSeekR1, DeepSeekV31
from .firefunction import FireFunctionV2
from .functionary import FunctionaryV31, FunctionaryV32
from .generic import Generic
from .glm45 import Glm45
from .granite import Granite
from .gpt_oss import GptOss
from .hermes import Hermes2Pro
from .kimi_k2 import KimiK2
from .llama3 import Llama3
from .minimax_m2 import MiniMaxM2
from .mistral import Magistral, MistralNemo, Ministral3
from .qwen3_coder import Qwen3Coder

# detection order; None marks where llama.cpp takes the generic format for tools + schema
_BEFORE = (DeepSeekV31, DeepSeekR1, CommandR7B, Granite, Glm45, Qwen3Coder, Hermes2Pro, GptOss, MiniMaxM2, KimiK2)
_AFTER = (FunctionaryV32, FireFunctionV2, FunctionaryV31, Llama3, Ministral3, Magistral)

_BY_NAME = {cls.name: cls for cls in _BEFORE + _AFTER + (MistralNemo, Generic)}
_BY_NAME["Content-only"] = ChatFormat
_BY_NAME["Llama 3.x with builtin tools"] = lambda: Llama3(with_builtin=True)
FORMAT_NAMES = tuple(_BY_NAME)


def template_format(src: str) -> ChatFormat:
    """The format a template uses for a request with tools (and no response schema)."""
    for cls in _BEFORE + _AFTER + (MistralNemo,):
        if cls.detect(src):
            return cls(src)
    return Generic(src)


def select_format(src: str, *, tools: list, tool_choice: str = "auto", json_schema=None) -> ChatFormat:
    """The format of one request, as llama-server chooses it."""
    for cls in _BEFORE:
        if cls.needs_no_schema and json_schema is not None:
            continue
        if cls.detect(src):
            return cls(src)
    if tools and json_schema is not None:
        return Generic(src)
    for cls in _AFTER:
        if cls.detect(src):
            return cls(src)
    if not tools or tool_choice == "none":
        return ChatFormat(src)
    if MistralNemo.detect(src):
        return MistralNemo(src)
    return Generic(src)


def format_by_name(name: str) -> ChatFormat:
    """The parser for a reported `chat_format` name (KeyError for an unknown one)."""
    return _BY_NAME[name]()


__all__ = ["ChatFormat", "ToolGrammar", "ToolSpec", "FORMAT_NAMES", "template_format", "select_format",
           "format_by_name"]
