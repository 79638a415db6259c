"""Prompts as the engine takes them (token ids), from what a request gives: a native
prompt (text, token ids, a mix of both, or a `prompt_string` object; several at once),
or a chat's messages (and tools) rendered by the chat template."""

from __future__ import annotations

from typing import Any

from pyllama.chat import ChatInputs, ChatParams, ChatTemplateError, apply_chat
from pyllama.errors import PromptTooLong

from .errors import bad_request, not_supported

MAX_PROMPTS = 256        # prompts in one request (times n_cmpl: tasks queued at once)


def tokenize_prompt(state, prompt: Any) -> list[int]:
    """One prompt: a string, a token list, or a list mixing both."""
    tok = state.llm.tokenizer
    n_vocab = state.llm.n_vocab
    if isinstance(prompt, dict):  # {"prompt_string": ..., "multimodal_data": [...]}
        if prompt.get("multimodal_data"):
            raise not_supported("This server does not support multimodal input")
        if not isinstance(prompt.get("prompt_string"), str):
            raise bad_request("\"prompt_string\" must be a string")
        prompt = prompt["prompt_string"]
    if isinstance(prompt, str):
        _refuse_too_long(state, [prompt])
        ids = tok.tokenize(prompt, add_special=True, parse_special=True)
    elif isinstance(prompt, list):
        _refuse_too_long(state, [p for p in prompt if isinstance(p, str)],
                         n_more=sum(1 for p in prompt if isinstance(p, int)))
        ids = []
        for k, el in enumerate(prompt):
            if isinstance(el, bool):
                raise bad_request("\"prompt\" elements must be strings or integers")
            if isinstance(el, int):
                ids.append(el)
            elif isinstance(el, str):
                ids.extend(tok.tokenize(el, add_special=k == 0, parse_special=True))
            else:
                raise bad_request("\"prompt\" elements must be strings or integers")
    else:
        raise bad_request("\"prompt\" must be a string, a list of tokens, or a list of prompts")
    if any(t < 0 or t >= n_vocab for t in ids):
        raise bad_request("Prompt contains invalid tokens")
    return ids


def _refuse_too_long(state, texts: list[str], n_more: int = 0) -> None:
    """A 400 before tokenizing text that cannot fit: every token of a byte-level BPE or
    SPM vocabulary spells at most max_token_bytes bytes of the text (and neither drops
    any), so a text needs at least bytes / max_token_bytes tokens. Tokenizing a 20 MB
    prompt only to refuse it would cost seconds of CPU."""
    tok = state.llm.tokenizer
    if tok.kind not in ("bpe", "spm") or not texts:
        return
    longest = tok.__dict__.get("_max_token_bytes")
    if longest is None:
        longest = tok.__dict__["_max_token_bytes"] = max(len(t.encode("utf-8", "surrogatepass")) for t in tok.tokens)
    n_chars = sum(len(t) for t in texts)
    n_ctx = state.engine.n_ctx_slot
    if n_chars < n_ctx:  # a character is at least one byte: short texts need no closer look
        return
    at_least = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) // max(1, longest) + n_more
    if at_least >= n_ctx:
        raise PromptTooLong(at_least, n_ctx, f"at least {at_least}")


def split_prompts(prompt: Any) -> list[Any]:
    """A request's prompts: one, unless `prompt` is a list of strings and token lists
    (a list holding any bare token id is one mixed prompt)."""
    if isinstance(prompt, list):
        if not prompt:
            raise bad_request("\"prompt\" must not be empty")
        if any(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
            return [prompt]
        if len(prompt) > MAX_PROMPTS:
            raise bad_request(f"\"prompt\": at most {MAX_PROMPTS} prompts per request, got {len(prompt)}")
        return list(prompt)
    if isinstance(prompt, dict):
        return [prompt]
    return [prompt]


def chat_params(template, inputs: ChatInputs, *, continue_final: bool) -> ChatParams:
    """A chat's prompt, and how to constrain and read its output (pyllama.chat.apply_chat),
    from checked messages (see schemas.chat_messages). continue_final: the prompt ends
    inside the last (assistant) message, which the model continues (apply_chat's
    assistant prefill)."""
    if continue_final and inputs.messages[-1]["role"] != "assistant":
        raise bad_request("continue_final_message needs the last message to be from the assistant")
    try:
        return apply_chat(template, inputs)
    except ChatTemplateError as e:
        raise bad_request(str(e)) from None
    except RecursionError:  # a tool schema nested almost as deep as a body may be
        raise bad_request("'tools': a schema is nested too deeply") from None
