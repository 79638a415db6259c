"""Chat templates: the GGUF's `tokenizer.chat_template` (a Hugging Face Jinja
template) rendered in jinja2's sandbox with the variables and helpers HF templates
expect; one of llama-server's built-in formats by name (`--chat-template llama3`);
chatml when the model has none.

`render` is the raw render: the messages and variables go to the template as given.
`apply` is what llama-server does (minja's `chat_template::apply`): it first rewrites
the conversation into what this template can show (`polyfill.py`, driven by the
template's capabilities, `caps.py`), e.g. a system message folded into the first
user turn for a template that refuses the system role, or tool calls written out as
JSON for a template that has no notion of them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import InvalidRequest
from .builtin import BUILTIN

if TYPE_CHECKING:
    from .caps import TemplateCaps

CHATML = ("{%- for message in messages -%}"
          "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
          "{%- endfor -%}"
          "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")

# Lines llama.cpp replaces before parsing, because the real templates refuse what
# llama-server legitimately sends (a null content with tool calls).
_PATCHES = [
    ("<|channel|>",  # gpt-oss
     "{%- if \"<|channel|>analysis<|message|>\" in message.content or "
     "\"<|channel|>final<|message|>\" in message.content %}"),
    ("[TOOL_CALLS]",  # Ministral 3
     "{%- if (message['content'] is none or message['content'] == '' or message['content']|length == 0) and "
     "(message['tool_calls'] is not defined or message['tool_calls'] is none or "
     "message['tool_calls']|length == 0) %}"),
]


class ChatTemplateError(InvalidRequest):
    """The template cannot be compiled, or it refused the messages (HTTP 400 / 500)."""


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(message)


def _json_default(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        return None
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return list(value)  # what filters like map() return
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False, separators=None,
            sort_keys: bool = False, **_: Any) -> str:
    """HF's `tojson`: no HTML escaping, non-ASCII kept unless asked."""
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, default=_json_default,
                      separators=tuple(separators) if separators else None, sort_keys=sort_keys)


def patch_source(source: str) -> str:
    for marker, line in _PATCHES:
        if marker in source and line in source:
            source = source.replace(line, "{%- if false %}")
    return source


def _environment() -> ImmutableSandboxedEnvironment:
    # a null printed by a template is nothing (jinja2 would print "None": a turn with only
    # tool calls has null content, and templates print it)
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, finalize=lambda v: "" if v is None else v,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    return env


class ChatTemplate:
    def __init__(self, source: str | None, *, bos_token: str = "", eos_token: str = "",
                 add_bos: bool = False, add_eos: bool = False):
        """source: Jinja text, or the name of a built-in format; None means chatml.
        add_bos / add_eos: the tokenizer adds these tokens itself, so `apply` drops the
        template's leading BOS / trailing EOS (llama-server's rule against doubling them)."""
        self.source = source or CHATML
        self.bos_token, self.eos_token = bos_token, eos_token
        self.add_bos, self.add_eos = add_bos, add_eos
        self.builtin = BUILTIN.get(self.source.strip()) if len(self.source) < 40 else None
        if self.builtin is not None:
            self.name = self.source.strip()
            return
        self.name = "jinja"
        try:
            self._template = _environment().from_string(patch_source(self.source))
        except jinja2.TemplateError as e:
            raise ChatTemplateError(f"invalid chat template: {e}") from None

    def render(self, messages: list[dict], *, add_generation_prompt: bool = True, tools: list | None = None,
               now: datetime | None = None, **extra: Any) -> str:
        """The raw render. `tools` is defined for the template only when there are some,
        as in llama-server; `now` is what `strftime_now` reads (default: the current time)."""
        if self.builtin is not None:
            return self.builtin(messages, add_generation_prompt)
        when = now or datetime.now()
        variables = {"strftime_now": lambda fmt: when.strftime(fmt), **extra,
                     "messages": messages, "add_generation_prompt": add_generation_prompt,
                     "bos_token": self.bos_token, "eos_token": self.eos_token}
        if tools:
            variables["tools"] = tools
        try:
            return self._template.render(**variables)
        except ChatTemplateError:
            raise
        except (jinja2.TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
            raise ChatTemplateError(f"chat template failed: {e}") from None

    def apply(self, messages: list[dict], *, tools: list | None = None, add_generation_prompt: bool = True,
              extra: dict | None = None, now: datetime | None = None, polyfill: bool = True) -> str:
        """llama-server's render: the conversation adapted to the template's capabilities
        (unless polyfill=False), then the template's BOS / EOS dropped where the tokenizer
        adds its own."""
        if polyfill and self.builtin is None:
            from .polyfill import polyfill_messages
            messages = polyfill_messages(messages, tools, self.caps, self.tool_call_example)
        out = self.render(messages, add_generation_prompt=add_generation_prompt, tools=tools, now=now,
                          **(extra or {}))
        if self.add_bos and self.bos_token and out.startswith(self.bos_token):
            out = out[len(self.bos_token):]
        if self.add_eos and self.eos_token and out.endswith(self.eos_token):
            out = out[:-len(self.eos_token)]
        return out

    @cached_property
    def _probe(self):
        from .caps import detect_caps
        return detect_caps(self)

    @property
    def caps(self) -> "TemplateCaps":
        """What the template can show, found by trial renders (computed once)."""
        return self._probe[0]

    @property
    def tool_call_example(self) -> str:
        """How this template writes a tool call, for templates that cannot list tools
        (shown to the model by the tools polyfill); empty when it cannot be inferred."""
        return self._probe[1]
