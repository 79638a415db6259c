"""/infill: fill-in-the-middle prompts assembled as llama-server assembles them.

    [extra context]  BOS?  FIM_PRE prefix prompt  FIM_SUF suffix  FIM_MID
    (with --spm-infill:  BOS? FIM_SUF suffix  FIM_PRE prefix prompt  FIM_MID)

The extra context (`input_extra`, repository-level chunks) is, when the vocabulary has
the tokens, `FIM_REP "myproject\\n"` then per chunk `FIM_SEP "<filename>\\n" <text>`
and a last `FIM_SEP "filename\\n"`; without FIM_SEP each chunk follows a plain-text
separator line. What fits: the last 3/4 of a batch of the prefix, of the suffix what
a quarter batch leaves after the prompt, and of the extra context the tail that
leaves a batch and twice n_predict of the slot's context free."""

from __future__ import annotations

from typing import Any

from .errors import bad_request, not_supported

_CHUNK_SEPARATOR = "\n\n--- snippet ---\n\n"
MAX_EXTRA_CHUNKS = 1024


def check_support(tok) -> None:
    """llama-server's 501 for a vocabulary without the three FIM tokens."""
    missing = "".join(f"{what} token is missing. " for what, t in
                      (("prefix", tok.fim_pre), ("suffix", tok.fim_suf), ("middle", tok.fim_mid)) if t < 0)
    if missing:
        raise not_supported(f"Infill is not supported by this model: {missing}")


def check_body(body: dict) -> list[dict]:
    """The request's fields in llama-server's order of checks; the extra chunks."""
    if "prompt" in body and not isinstance(body["prompt"], str):
        raise bad_request("\"prompt\" must be a string")
    if "input_prefix" not in body:
        raise bad_request("\"input_prefix\" is required")
    if "input_suffix" not in body:
        raise bad_request("\"input_suffix\" is required")
    extra = body.get("input_extra", [])
    if extra is None:
        extra = []
    if not isinstance(extra, list):
        raise bad_request("\"input_extra\" must be an array of {\"filename\": string, \"text\": string}")
    if len(extra) > MAX_EXTRA_CHUNKS:
        raise bad_request(f"\"input_extra\": at most {MAX_EXTRA_CHUNKS} chunks")
    for chunk in extra:
        if not isinstance(chunk, dict) or not isinstance(chunk.get("text"), str):
            raise bad_request("extra_context chunk must contain a \"text\" field with a string value")
        if "filename" in chunk and not isinstance(chunk["filename"], str):
            raise bad_request("extra_context chunk's \"filename\" field must be a string")
    return extra


def tokenize_mixed(tok, value: Any, field: str) -> list[int]:
    """A string, or a list of strings and token ids, without special tokens."""
    if isinstance(value, str):
        return tok.tokenize(value, add_special=False, parse_special=False)
    if isinstance(value, list):
        ids: list[int] = []
        for el in value:
            if isinstance(el, str):
                ids += tok.tokenize(el, add_special=False, parse_special=False)
            elif isinstance(el, int) and not isinstance(el, bool) and 0 <= el < len(tok.tokens):
                ids.append(el)
            else:
                raise bad_request(f"\"{field}\" elements must be strings or token ids")
        return ids
    raise bad_request(f"\"{field}\" must be a string or an array of strings and token ids")


def infill_tokens(tok, prefix: list[int], suffix: list[int], extra: list[dict], prompt: list[int], *,
                  n_batch: int, n_predict: int, n_ctx: int, spm: bool) -> list[int]:
    """The whole prompt (see the module docstring)."""
    def text(s: str) -> list[int]:
        return tok.tokenize(s, add_special=False, parse_special=False)

    extra_ids: list[int] = []
    if tok.fim_rep >= 0:
        extra_ids += [tok.fim_rep] + text("myproject\n")
    for chunk in extra:
        if tok.fim_sep >= 0:
            extra_ids += [tok.fim_sep] + text(chunk.get("filename", "tmp") + "\n")
        else:
            extra_ids += text(_CHUNK_SEPARATOR)
        extra_ids += text(chunk["text"])
    if tok.fim_sep >= 0:
        extra_ids += [tok.fim_sep] + text("filename\n")

    n_prefix = min(len(prefix), 3 * (n_batch // 4))
    n_suffix = min(len(suffix), max(0, n_batch // 4 - (2 + len(prompt))))
    n_extra = min(max(0, n_ctx - n_batch - 2 * n_predict), len(extra_ids))

    head = [tok.fim_pre] + prefix[len(prefix) - n_prefix:] + prompt
    tail = [tok.fim_suf] + suffix[:n_suffix]
    first, second = (tail, head) if spm else (head, tail)
    if tok.add_bos and tok.bos >= 0:
        first = [tok.bos] + first
    return extra_ids[len(extra_ids) - n_extra:] + first + second + [tok.fim_mid]
