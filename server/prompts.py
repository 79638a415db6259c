"""Prompts as the engine takes them (token ids), from what a request gives: a native
prompt (text, token ids, a mix of both, or a `prompt_string` object; several at once),
or a chat's messages (and tools) rendered by the chat template."""

from __future__ import annotations

from typing import Any

from pyllama.chat import ChatInputs, ChatParams, ChatTemplateError, apply_chat
from pyllama.engine import check_embedding_input
from pyllama.errors import PromptTooLong

from .errors import bad_request, not_supported

MAX_PROMPTS = 256        # prompts in one request (times n_cmpl: tasks queued at once)


def tokenize_prompt(state, prompt: Any, *, pooling: str | None = None) -> list[int]:
    """One prompt: a string, a token list, or a list mixing both. pooling: an embedding
    input's (refused early as the engine would refuse it; see refuse_too_long)."""
    tok = state.llm.tokenizer
    n_vocab = state.llm.n_vocab
    if isinstance(prompt, dict):  # {"prompt_string": ..., "multimodal_data": [...]}
        if prompt.get("multimodal_data"):
            raise not_supported("This server does not support multimodal input")
        if not isinstance(prompt.get("prompt_string"), str):
            raise bad_request("\"prompt_string\" must be a string")
        prompt = prompt["prompt_string"]
    if isinstance(prompt, str):
        refuse_too_long(state, [prompt], pooling=pooling)
        ids = tok.tokenize(prompt, add_special=True, parse_special=True)
    elif isinstance(prompt, list):
        refuse_too_long(state, [p for p in prompt if isinstance(p, str)],
                        n_more=sum(1 for p in prompt if isinstance(p, int)), pooling=pooling)
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


def refuse_too_long(state, texts: list[str], n_more: int = 0, *, pooling: str | None = None) -> None:
    """A 400 before tokenizing text that cannot fit, from a lower bound of its token count:
    tokenizing a 15 MB input only to refuse it would cost seconds to minutes of CPU. An
    embedding input (pooling given) is refused only when it fails all of the engine's
    checks, with the error the engine would give, the first of them in llama-server's order.

    - byte-level BPE, SPM: every token spells at most max_token_bytes bytes of the text
      (and neither drops any), so a text needs at least bytes / max_token_bytes tokens.
    - WordPiece drops whitespace; every other character is spelled by some token of at
      most max_token_chars characters, unless a word has a part no token spells (the
      word is then one [UNK]) or it is a control character (dropped). Text with more
      non-space characters than the context holds spelled out is refused: only text made
      mostly of such words would have fit, which is where this departs from llama-server.
      What passes is short enough to tokenize quickly (the engine checks its real size)."""
    tok = state.llm.tokenizer
    n_ctx = state.engine.n_ctx_slot
    limit = n_ctx if pooling is None else max(n_ctx, state.llm.n_ubatch)
    if not texts or sum(len(t) for t in texts) < limit:  # a character is at least a byte
        return
    if tok.kind in ("bpe", "spm"):
        longest = tok.__dict__.get("_max_token_bytes")
        if longest is None:
            longest = tok.__dict__["_max_token_bytes"] = max(len(t.encode("utf-8", "surrogatepass"))
                                                             for t in tok.tokens)
        size = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
    elif tok.kind == "wpm":
        longest = tok.encoder.max_len
        size = sum(len("".join(t.split())) for t in texts)
    else:
        return
    at_least = size // max(1, longest) + n_more
    if pooling is not None:
        if at_least > limit:
            check_embedding_input(state.llm, at_least, pooling=pooling, n_ctx=n_ctx, shown=f"at least {at_least}")
    elif at_least >= n_ctx:
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
    if continue_final and (not inputs.messages or inputs.messages[-1]["role"] != "assistant"):
        raise bad_request("continue_final_message needs the last message to be from the assistant")
    try:
        return apply_chat(template, inputs)
    except ChatTemplateError as e:
        raise bad_request(str(e)) from None
    except RecursionError:  # a tool schema nested almost as deep as a body may be
        raise bad_request("'tools': a schema is nested too deeply") from None
