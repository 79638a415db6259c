"""The Responses API answer: the `response` object and the typed events of its stream."""

from __future__ import annotations

from pyllama.chat import ChatStream, assign_ids, parse_output
from pyllama.chat.formats.base import random_id

from pyllama.openai_answers import progress_json

from ..answers import Answer, now
from ..sse import NamedEvent
from .request import ResponsesRequest


def reasoning_item(item_id: str, text: str, status: str) -> dict:
    content = [{"text": text, "type": "reasoning_text"}] if text else []
    return {"id": item_id, "summary": [], "type": "reasoning", "content": content, "encrypted_content": "",
            "status": status}


def text_part(text: str) -> dict:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def message_item(item_id: str, text: str | None, status: str) -> dict:
    """A message item: with its one output_text part, or (text None: just added) none yet."""
    return {"content": [] if text is None else [text_part(text)], "id": item_id, "role": "assistant",
            "status": status, "type": "message"}


def call_item(call_id: str, name: str, arguments: str, status: str) -> dict:
    """A function_call item: `call_id` is what a function_call_output answers."""
    return {"type": "function_call", "id": call_id, "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


def new_id(prefix: str) -> str:
    return prefix + random_id()


class _Item:
    """An output item being streamed: its kind, id, the text (or arguments) sent so far,
    and a function call's name."""

    def __init__(self, kind: str, item_id: str, name: str = ""):
        self.kind, self.id, self.name, self.text = kind, item_id, name, ""

    def as_json(self, status: str) -> dict:
        if self.kind == "reasoning":
            return reasoning_item(self.id, self.text if status == "completed" else "", status)
        if self.kind == "message":
            return message_item(self.id, self.text if status == "completed" else None, status)
        return call_item(self.id, self.name, self.text if status == "completed" else "", status)


class ResponsesAnswer(Answer):
    """The `response` object of a Responses request, or its stream of events.

    Whole: output items in llama-server's order, a `reasoning` item (`rs_…`), a `message`
    item (`msg_…`) with one `output_text` part, a `function_call` item per call
    (`call_id` "fc_" + the call's id); each only when it has something.

    Streamed, llama-server's events, each `event: <type>` then its data with a
    `sequence_number` counting from 0: `response.created` and `response.in_progress`,
    then per delta of the parsed output (pyllama.chat.ChatStream) an item opened when its
    first text comes (`response.output_item.added`, for the message also
    `response.content_part.added`) and its increments (`response.reasoning_text.delta`,
    `response.output_text.delta`, `response.function_call_arguments.delta`); at the end
    every item is closed in output order (`response.output_text.done`,
    `response.content_part.done`; `response.function_call_arguments.done`;
    `response.output_item.done`) and `response.completed` carries the whole response. No
    `[DONE]`.

    Where llama-server's stream does not validate in the openai SDK, this one does: every
    event has its `output_index` (and `content_index`, `logprobs`), every response object
    has the fields the SDK requires (`created_at`, `model`, `output`, `tools`, ...), a
    call item has one `call_id` from added to done (llama-server's added item says
    "call_…", its done item "fc_…", which the SDK's stream helper refuses), an output_text
    part has `annotations`, and a reasoning item is closed with
    `response.reasoning_text.done` too. The final items carry what was streamed, so the
    deltas always join to them.

    With timings_per_token, the last event of each delta carries the `timings` so far;
    with return_progress, prompt processing is reported by `response.in_progress` events
    with a `prompt_progress`; `response.completed` carries the final `timings`, as
    llama-server's do.

    `usage`: input_tokens = the prompt's tokens (cached_tokens of them reused from the
    slot's cache, cache_write_tokens evaluated and kept there), output_tokens = the
    tokens generated (reasoning_tokens: those of the reasoning text, tokenized again).
    `status` is "completed" whenever the generation ended, also at max_output_tokens,
    as in llama-server (and so the SDK's stream helper, which needs `response.completed`,
    works)."""

    CHUNK_TIMINGS = True  # timings_per_token (sse.py)

    def __init__(self, req: ResponsesRequest, **kw):
        super().__init__(req, **kw)
        self.id, self.created = new_id("resp_"), now()
        self.seq = 0
        self.chat = ChatStream(req.syntax)
        self.generated = ""
        self.items: list[_Item] = []           # in output_index order
        self.kinds: dict[str, int] = {}        # "reasoning" / "message" -> output index
        self.calls: dict[int, int] = {}        # tool call index -> output index

    # whole

    def whole(self, results):
        r = results[0]
        msg = assign_ids(parse_output(r.content, self.req.syntax), self.req.syntax)
        output = []
        if msg.reasoning_content:
            output.append(reasoning_item(new_id("rs_"), msg.reasoning_content, "completed"))
        if msg.content:
            output.append(message_item(new_id("msg_"), msg.content, "completed"))
        output += [call_item("fc_" + c.id, c.name, c.arguments, "completed") for c in msg.tool_calls]
        return self.response("completed", output, r, msg.reasoning_content)

    def response(self, status: str, output: list[dict], r=None, reasoning: str = "") -> dict:
        """The response object (llama-server's fields first, then the SDK's others)."""
        echo, sampling = self.req.echo, self.req.tasks[0].sampling
        return {
            "completed_at": now() if status == "completed" else None, "created_at": self.created,
            "id": self.id, "model": self.model, "object": "response", "output": output, "status": status,
            "usage": self.usage(r, reasoning) if r is not None else None,
            "error": None, "incomplete_details": None, "instructions": echo.get("instructions"),
            "max_output_tokens": echo.get("max_output_tokens"),
            "parallel_tool_calls": echo.get("parallel_tool_calls", False), "previous_response_id": None,
            "reasoning": echo.get("reasoning", {"effort": None, "summary": None}), "store": False,
            "temperature": sampling.temperature, "text": {"format": {"type": "text"}},
            "tool_choice": echo.get("tool_choice", "auto"), "tools": echo.get("tools", []),
            "top_p": sampling.top_p, "truncation": "disabled", "metadata": echo.get("metadata", {}),
        }

    def usage(self, r, reasoning: str) -> dict:
        n_reasoning = len(self.tokenizer.tokenize(reasoning, add_special=False)) if reasoning else 0
        return {"input_tokens": r.n_prompt,
                "input_tokens_details": {"cached_tokens": r.n_cached, "cache_write_tokens": r.n_prompt - r.n_cached},
                "output_tokens": r.n_decoded,
                "output_tokens_details": {"reasoning_tokens": min(n_reasoning, r.n_decoded)},
                "total_tokens": r.n_prompt + r.n_decoded}

    # streamed

    def event(self, kind: str, **fields) -> NamedEvent:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return NamedEvent(kind, data)

    def opening(self, i):
        return [self.event(kind, response=self.response("in_progress", []))
                for kind in ("response.created", "response.in_progress")]

    def progress(self, i, ev):
        return [self.event("response.in_progress", response=self.response("in_progress", []),
                           prompt_progress=progress_json(ev))]

    def partial(self, i, ev):
        self.generated += ev.content
        return self._deltas(self.chat.update(self.generated))

    def final(self, i, r):
        _, deltas = self.chat.finish(r.content)
        out = self._deltas(deltas)
        output = []
        for k, item in enumerate(self.items):
            out += self._close(k, item)
            output.append(item.as_json("completed"))
        reasoning = self.items[self.kinds["reasoning"]].text if "reasoning" in self.kinds else ""
        out.append(self.event("response.completed", response=self.response("completed", output, r, reasoning),
                              timings=r.timings.to_json()))
        return out

    def _deltas(self, deltas: list[dict]) -> list[NamedEvent]:
        out: list[NamedEvent] = []
        for d in deltas:
            if "reasoning_content" in d:
                k, item = self._open("reasoning", "rs_", out)
                item.text += d["reasoning_content"]
                out.append(self.event("response.reasoning_text.delta", item_id=item.id, output_index=k,
                                      content_index=0, delta=d["reasoning_content"]))
            if "content" in d:
                k, item = self._open("message", "msg_", out)
                item.text += d["content"]
                out.append(self.event("response.output_text.delta", item_id=item.id, output_index=k,
                                      content_index=0, delta=d["content"], logprobs=[]))
            for call in d.get("tool_calls", []):
                fn = call.get("function") or {}
                k = self.calls.get(call["index"])
                if k is None:
                    k = self.calls[call["index"]] = self._add(_Item("function_call", "fc_" + call["id"], fn["name"]),
                                                              out)
                item = self.items[k]
                if fn.get("arguments"):
                    item.text += fn["arguments"]
                    out.append(self.event("response.function_call_arguments.delta", item_id=item.id,
                                          output_index=k, delta=fn["arguments"]))
        return out

    def _open(self, kind: str, prefix: str, out: list) -> tuple[int, _Item]:
        """The reasoning or message item, added (with the message's empty part) on first use."""
        k = self.kinds.get(kind)
        if k is None:
            k = self.kinds[kind] = self._add(_Item(kind, new_id(prefix)), out)
            if kind == "message":
                out.append(self.event("response.content_part.added", item_id=self.items[k].id, output_index=k,
                                      content_index=0, part=text_part("")))
        return k, self.items[k]

    def _add(self, item: _Item, out: list) -> int:
        self.items.append(item)
        k = len(self.items) - 1
        out.append(self.event("response.output_item.added", output_index=k, item=item.as_json("in_progress")))
        return k

    def _close(self, k: int, item: _Item) -> list[NamedEvent]:
        out = []
        if item.kind == "reasoning":
            out.append(self.event("response.reasoning_text.done", item_id=item.id, output_index=k, content_index=0,
                                  text=item.text))
        elif item.kind == "message":
            out.append(self.event("response.output_text.done", item_id=item.id, output_index=k, content_index=0,
                                  text=item.text, logprobs=[]))
            out.append(self.event("response.content_part.done", item_id=item.id, output_index=k, content_index=0,
                                  part=text_part(item.text)))
        else:
            out.append(self.event("response.function_call_arguments.done", item_id=item.id, output_index=k,
                                  arguments=item.text))
        out.append(self.event("response.output_item.done", output_index=k, item=item.as_json("completed")))
        return out
