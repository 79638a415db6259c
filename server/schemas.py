"""What each generation API accepts: its body checked in llama-server's order (the
first problem is a 400 naming the field), OpenAI's fields mapped to the native ones,
and the typed request a route runs, with the engine's tasks made.

The parse functions render templates, tokenize and compile grammars: routes call
them on a worker thread (offload). The native parameters themselves are read by
params.py, prompts by prompts.py, output constraints by constraints.py."""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field

from pyllama.chat import ChatInputs, ChatParams, ChatSyntax
from pyllama.chat.output_parser import REASONING_FORMATS
from pyllama.engine import TaskRequest
from pyllama.engine.reasoning_budget import ReasoningBudget

from .constraints import chat_constraint, parse_constraint, requested_schema
from .errors import MEDIA_PARTS, bad_request, media_unsupported
from .infill import check_body as check_infill_body, check_support as check_infill_support, infill_tokens, tokenize_mixed
from .params import field, n_choices, task_request
from .prompts import chat_params as render_chat_params, split_prompts, tokenize_prompt

ROLES = {"system", "user", "assistant", "tool", "developer", "function"}


@dataclass
class CompletionRequest:
    """/completion (native) or /v1/completions: every prompt n times, in prompt order."""

    tasks: list[TaskRequest]
    prompts: list                        # per task: the prompt as given
    prompt_ids: list[list[int]]          # per task
    stream: bool
    include_usage: bool = False          # /v1/completions: a usage chunk ends the stream
    return_tokens: bool = False          # /completion
    response_fields: list | None = None  # /completion: only these fields of each result


@dataclass
class ChatRequest:
    """/v1/chat/completions: one rendered prompt, n choices, each output read back
    (reasoning, tool calls) with `syntax`."""

    tasks: list[TaskRequest]
    stream: bool
    include_usage: bool = False
    syntax: ChatSyntax = dataclass_field(default_factory=ChatSyntax)


def completion(st, body: dict) -> CompletionRequest:
    """The native /completion: `n_cmpl` (or `n`) completions of each prompt."""
    stream = field(body, "stream", bool, False)
    return_tokens = field(body, "return_tokens", bool, False)
    n = n_choices(st, body, ("n_cmpl", "n"))
    prompts, ids, tasks = _prompt_tasks(st, body, stream, openai=False)
    fields = body.get("response_fields")
    reasoning_format = field(body, "reasoning_format", str, st.config.reasoning_format)
    if reasoning_format not in REASONING_FORMATS:
        raise bad_request(f"Unknown reasoning format: {reasoning_format}")
    for t in tasks:
        t.reasoning_format = reasoning_format
    return CompletionRequest(tasks=_repeat(tasks, n), prompts=_repeat(prompts, n), prompt_ids=_repeat(ids, n),
                             stream=stream, return_tokens=return_tokens,
                             response_fields=fields if isinstance(fields, list) and fields else None)


def openai_completion(st, body: dict) -> CompletionRequest:
    """/v1/completions: as /completion, but `logprobs` is a number (read as n_probs by
    the sampling parameters) and `response_format` may constrain the output."""
    stream = field(body, "stream", bool, False)
    lp = body.get("logprobs")
    if lp is not None and (isinstance(lp, bool) or not isinstance(lp, int)):
        raise bad_request("Field 'logprobs': expected an integer")
    n = n_choices(st, body, ("n",))
    prompts, ids, tasks = _prompt_tasks(st, body, stream, openai=True)
    return CompletionRequest(tasks=_repeat(tasks, n), prompts=_repeat(prompts, n), prompt_ids=_repeat(ids, n),
                             stream=stream, include_usage=include_usage(body))


def chat(st, body: dict) -> ChatRequest:
    """/v1/chat/completions: the messages and tools rendered by the chat template and
    tokenized, OpenAI's fields mapped to the native ones (see native_chat_body). With
    tools, the chat format's tool-call grammar (lazy for tool_choice "auto") replaces
    the request's constraint: a response_format schema is folded into it by the format
    (pyllama.chat.apply_chat), a `grammar` with tools is refused there."""
    stream = field(body, "stream", bool, False)
    n = n_choices(st, body, ("n",))
    params = chat_params(st, body, stream=stream)
    ids = st.llm.tokenizer.tokenize(params.prompt, add_special=True, parse_special=True)
    native = native_chat_body(body)
    if params.grammar:
        constraint = chat_constraint(st, params)
    else:
        constraint = parse_constraint(st, native, openai=True)
    task = task_request(st, native, ids, stream=stream, constraint=constraint, more_stops=params.additional_stops)
    syntax, chat_format = params.syntax, params.format
    if st.config.skip_chat_parsing:  # --skip-chat-parsing: everything the model writes is content
        syntax, chat_format = ChatSyntax(format="Content-only", reasoning_format="none", parse_tool_calls=False), \
            "Content-only"
    task.chat_format, task.reasoning_format = chat_format, syntax.reasoning_format
    task.reasoning_budget = reasoning_budget(st, body, params, task)
    return ChatRequest(tasks=[task] * n, stream=stream, include_usage=include_usage(body), syntax=syntax)


MAX_BUDGET_MESSAGE = 16384  # characters


def reasoning_budget(st, body: dict, params: ChatParams, task: TaskRequest) -> ReasoningBudget | None:
    """The request's `reasoning_budget_tokens` (default --reasoning-budget; -1: none)
    and `reasoning_budget_message` (default --reasoning-budget-message) as the engine's
    budget, for a format with reasoning markers. Not under a grammar that applies from
    the first token: that grammar decides where reasoning ends."""
    n = field(body, "reasoning_budget_tokens", int, st.config.reasoning_budget)
    if n < -1:
        raise bad_request("Field 'reasoning_budget_tokens': must be -1 (unrestricted) or a number of tokens")
    message = field(body, "reasoning_budget_message", str, st.config.reasoning_budget_message)
    if len(message) > MAX_BUDGET_MESSAGE:
        raise bad_request(f"Field 'reasoning_budget_message': longer than {MAX_BUDGET_MESSAGE} characters")
    if n < 0 or not params.thinking_end or (task.grammar is not None and not task.grammar_lazy):
        return None
    tok = st.llm.tokenizer.tokenize
    return ReasoningBudget(n, start=tok(params.thinking_start, add_special=False, parse_special=True),
                           end=tok(params.thinking_end, add_special=False, parse_special=True),
                           forced=tok(message + params.thinking_end, add_special=False, parse_special=True),
                           forced_open=params.thinking_forced_open)


def infill(st, body: dict) -> CompletionRequest:
    """/infill: the FIM prompt (server/infill.py) completed as /completion completes one."""
    tok = st.llm.tokenizer
    check_infill_support(tok)
    extra = check_infill_body(body)
    stream = field(body, "stream", bool, False)
    return_tokens = field(body, "return_tokens", bool, False)
    prompt = tok.tokenize(body.get("prompt") or "", add_special=False, parse_special=True)
    cfg = st.config
    ids = infill_tokens(tok, tokenize_mixed(tok, body["input_prefix"], "input_prefix"),
                        tokenize_mixed(tok, body["input_suffix"], "input_suffix"), extra, prompt,
                        n_batch=cfg.batch_size, n_predict=cfg.n_predict, n_ctx=st.engine.n_ctx_slot,
                        spm=cfg.spm_infill)
    task = task_request(st, body, ids, stream=stream, constraint=parse_constraint(st, body, openai=False))
    fields = body.get("response_fields")
    return CompletionRequest(tasks=[task], prompts=[ids], prompt_ids=[ids], stream=stream,
                             return_tokens=return_tokens,
                             response_fields=fields if isinstance(fields, list) and fields else None)


def native_chat_body(body: dict) -> dict:
    """A chat body with OpenAI's fields as the native parameters: `logprobs` (a boolean)
    with `top_logprobs` -> n_probs (1 without it; a number is clamped to the vocabulary
    by the sampling reader, anything else is a 400 there), `max_completion_tokens` ->
    max_tokens (when that is not given)."""
    lp = body.get("logprobs")
    if lp is not None and not isinstance(lp, bool):
        raise bad_request("Field 'logprobs': expected a boolean")
    top = body.get("top_logprobs")
    if top is not None and not lp:
        raise bad_request("top_logprobs requires logprobs to be set to true")
    native = dict(body)
    native.pop("logprobs", None)
    if lp:
        native["n_probs"] = 1 if top is None else top
    if body.get("max_completion_tokens") is not None and body.get("max_tokens") is None:
        native["max_tokens"] = body["max_completion_tokens"]
    return native


def include_usage(body: dict) -> bool:
    """OpenAI's stream_options.include_usage."""
    opts = body.get("stream_options")
    return isinstance(opts, dict) and bool(opts.get("include_usage"))


def chat_prompt(st, body: dict) -> str:
    """The prompt text of a chat body (/apply-template): see chat_params."""
    return chat_params(st, body).prompt


def chat_params(st, body: dict, *, stream: bool = False) -> ChatParams:
    """A chat body rendered by the server's chat template: its messages, `tools`,
    `tool_choice`, `parallel_tool_calls`, `add_generation_prompt`,
    `continue_final_message`, `chat_template_kwargs` (over --chat-template-kwargs),
    `enable_thinking` (default --reasoning; off with --reasoning-budget 0),
    `reasoning_effort` (default --reasoning-effort) and `reasoning_format` (default
    --reasoning-format). Bad tools or tool_choice are 400s (InvalidRequest)."""
    cfg = st.config
    msgs = chat_messages(body)
    add_gen = field(body, "add_generation_prompt", bool, True)
    cont = field(body, "continue_final_message", bool, False)
    if add_gen and cont and "add_generation_prompt" in body:
        raise bad_request("Cannot set both add_generation_prompt and continue_final_message")
    kwargs = body.get("chat_template_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise bad_request("Field 'chat_template_kwargs': expected an object")
    tools = body.get("tools")
    enable_thinking = field(body, "enable_thinking", bool, None)
    if enable_thinking is None:
        enable_thinking = {"on": True, "off": False}.get(cfg.reasoning)
        if cfg.reasoning_budget == 0:
            enable_thinking = False
    effort = None if cfg.reasoning_effort == "default" else cfg.reasoning_effort
    grammar = body.get("grammar")
    inputs = ChatInputs(
        msgs, tools=tools, tool_choice=body.get("tool_choice"),
        parallel_tool_calls=field(body, "parallel_tool_calls", bool, False),
        add_generation_prompt=add_gen, enable_thinking=enable_thinking,
        reasoning_effort=field(body, "reasoning_effort", str, effort),
        reasoning_format=field(body, "reasoning_format", str, cfg.reasoning_format),
        chat_template_kwargs={**cfg.template_kwargs, **kwargs},
        json_schema=requested_schema(body) if tools else None,
        grammar=grammar if isinstance(grammar, str) and grammar else None,
        stream=stream, prefill_assistant=cont or cfg.prefill_assistant, reasoning_preserve=cfg.reasoning_preserve)
    return render_chat_params(st.template, inputs, continue_final=cont)


def chat_messages(body: dict) -> list[dict]:
    """The messages, each with its content as one string (text parts joined)."""
    msgs = body.get("messages")
    if not isinstance(msgs, list):  # (empty is allowed, as llama-server allows it)
        raise bad_request("'messages' must be an array of message objects")
    out = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise bad_request("each message must be an object")
        role = m.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise bad_request(f"invalid message role: {role!r}")
        text = _message_text(m)
        if i == len(msgs) - 1 and role == "assistant" and isinstance(m.get("content"), list):
            text = m["content"]  # a prefill's text parts: the chat library joins them as llama.cpp continues them
        out.append({**m, "content": text})
    return out


def _message_text(m: dict) -> str:
    content = m.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        texts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") in MEDIA_PARTS:
                raise media_unsupported(MEDIA_PARTS[part["type"]])
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise bad_request("only text content parts are supported")
            texts.append(part["text"])
        return "".join(texts)
    if content is None:
        if m["role"] != "assistant" or not m.get("tool_calls"):
            raise bad_request("message content is required")
        return ""
    if not isinstance(content, str):
        raise bad_request("message content must be a string or an array of content parts")
    return content


def _prompt_tasks(st, body: dict, stream: bool, openai: bool) -> tuple[list, list[list[int]], list[TaskRequest]]:
    """A completion body's prompts, their tokens, and one task per prompt."""
    if "prompt" not in body or body["prompt"] is None:
        raise bad_request("\"prompt\" is required")
    prompts = split_prompts(body["prompt"])
    ids = [tokenize_prompt(st, p) for p in prompts]
    constraint = parse_constraint(st, body, openai=openai)
    tasks = [task_request(st, body, p, stream=stream, constraint=constraint) for p in ids]
    return prompts, ids, tasks


def _repeat(items: list, n: int) -> list:
    """Each item n times, in order: [a, b] -> [a, a, b, b]."""
    return [x for x in items for _ in range(n)]
