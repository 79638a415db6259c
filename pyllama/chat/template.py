"""Chat templates: the GGUF's `tokenizer.chat_template` (a Hugging Face Jinja
template) rendered in jinja2's sandbox with the variables and helpers HF templates
expect; one of llama-server's built-in formats by name (`--chat-template llama3`);
chatml when the model has none."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import InvalidRequest
from .builtin import BUILTIN

CHATML = ("{%- for message in messages -%}"
          "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
          "{%- endfor -%}"
          "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")


class ChatTemplateError(InvalidRequest):
    """The template cannot be compiled, or it refused the messages (HTTP 400 / 500)."""


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(message)


def _tojson(value: Any, indent: int | None = None, **_: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


class ChatTemplate:
    def __init__(self, source: str | None, *, bos_token: str = "", eos_token: str = ""):
        """source: Jinja text, or the name of a built-in format; None means chatml."""
        self.source = source or CHATML
        self.bos_token, self.eos_token = bos_token, eos_token
        self.builtin = BUILTIN.get(self.source.strip()) if len(self.source) < 40 else None
        if self.builtin is not None:
            self.name = self.source.strip()
            return
        self.name = "jinja"
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=["jinja2.ext.loopcontrols"])
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        try:
            self._template = env.from_string(self.source)
        except jinja2.TemplateError as e:
            raise ChatTemplateError(f"invalid chat template: {e}") from None

    def render(self, messages: list[dict], *, add_generation_prompt: bool = True, **extra: Any) -> str:
        if self.builtin is not None:
            return self.builtin(messages, add_generation_prompt)
        try:
            return self._template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                         bos_token=self.bos_token, eos_token=self.eos_token, **extra)
        except ChatTemplateError:
            raise
        except jinja2.TemplateError as e:
            raise ChatTemplateError(f"chat template failed: {e}") from None
