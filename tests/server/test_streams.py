"""The one stream loop (sse.answer_events) with each API's answer builder, on made-up
engine events: no model, no server. The sequences are llama-server's: OpenAI chat
sends a role chunk, content chunks and a finish chunk per choice, then the usage
chunk (stream_options.include_usage) and [DONE]; an error ends any stream at once."""

from __future__ import annotations

import json

from pyllama.chat import ChatSyntax
from pyllama.engine import ErrorEvent, FinalEvent, PartialEvent, TaskRequest
from pyllama.engine.task import CompletionResult, Timings
from pyllama.errors import PromptTooLong, TaskFailed
from pyllama.server.answers import ChatCompletion, NativeCompletion, TextCompletion, usage
from pyllama.server.schemas import ChatRequest, CompletionRequest
from pyllama.server.sse import answer_events


def result(content="Hi!", n_decoded=2, n_prompt=5, n_cached=1, stop_type="limit") -> CompletionResult:
    return CompletionResult(content=content, tokens=[7, 8], id_slot=0, n_decoded=n_decoded, n_prompt=n_prompt,
                            n_cached=n_cached, stop_type=stop_type, stopping_word="", truncated=False,
                            has_new_line=False, timings=Timings(), probs=[], seed=0)


TIMINGS = Timings().to_json()


def partial(text: str, n_decoded: int) -> PartialEvent:
    return PartialEvent(content=text, tokens=[n_decoded], probs=[], n_decoded=n_decoded, n_prompt=5, id_slot=0)


def one_choice(i: int = 0) -> list:
    return [(i, partial("Hi", 1)), (i, partial("!", 2)), (i, FinalEvent(result()))]


def payloads(answer, events) -> list:
    out = []
    for text in answer_events(answer, events):
        assert text.startswith("data: ") and text.endswith("\n\n")
        data = text[len("data: "):-2]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def build(answer_type, req):
    return answer_type(req, model="m", tokenizer=None, n_ctx=2048)


def chat(n: int = 1, include_usage: bool = False) -> ChatCompletion:
    task = TaskRequest(prompt=[1, 2], stream=True)
    return build(ChatCompletion, ChatRequest(tasks=[task] * n, stream=True, include_usage=include_usage))


def test_chat_stream_with_usage():
    ev = payloads(chat(include_usage=True), one_choice())
    assert ev[0]["choices"] == [{"finish_reason": None, "index": 0, "delta": {"role": "assistant", "content": None}}]
    assert [e["choices"][0]["delta"] for e in ev[1:3]] == [{"content": "Hi"}, {"content": "!"}]
    assert ev[3]["choices"] == [{"finish_reason": "length", "index": 0, "delta": {}}] and "timings" not in ev[3]
    assert ev[4]["choices"] == [] and ev[4]["usage"] == {
        "completion_tokens": 2, "prompt_tokens": 5, "total_tokens": 7, "prompt_tokens_details": {"cached_tokens": 1}}
    assert ev[4]["timings"] == TIMINGS
    assert ev[5] == "[DONE]" and len(ev) == 6
    for e in ev[:5]:
        assert e["object"] == "chat.completion.chunk" and e["id"] == ev[0]["id"] and e["id"].startswith("chatcmpl-")
        assert e["model"] == "m" and e["system_fingerprint"] and isinstance(e["created"], int)


def test_chat_stream_without_usage_puts_timings_on_each_finish_chunk():
    ev = payloads(chat(n=2), [*one_choice(0), *one_choice(1)])
    assert [e if e == "[DONE]" else (e["choices"][0]["index"], "timings" in e) for e in ev] == \
        [(0, False), (0, False), (0, False), (0, True), (1, False), (1, False), (1, False), (1, True), "[DONE]"]


def test_text_completion_stream():
    req = CompletionRequest(tasks=[TaskRequest(prompt=[1])], prompts=["x"], prompt_ids=[[1]], stream=True,
                            include_usage=True)
    ev = payloads(build(TextCompletion, req), one_choice())
    assert [e["choices"][0] for e in ev[:2]] == [
        {"text": "Hi", "index": 0, "logprobs": None, "finish_reason": None},
        {"text": "!", "index": 0, "logprobs": None, "finish_reason": None}]
    assert ev[2]["choices"] == [{"text": "", "index": 0, "logprobs": None, "finish_reason": "length"}]
    assert ev[2]["timings"] == TIMINGS
    assert ev[3]["choices"] == [] and ev[3]["usage"]["total_tokens"] == 7 and "timings" not in ev[3]
    assert ev[4] == "[DONE]" and len(ev) == 5
    assert all(e["object"] == "text_completion" and e["id"].startswith("cmpl-") for e in ev[:4])


def test_native_stream_has_no_done():
    req = CompletionRequest(tasks=[TaskRequest(prompt=[1])], prompts=["x"], prompt_ids=[[1]], stream=True)
    ev = payloads(build(NativeCompletion, req), one_choice())
    assert [(e["content"], e["stop"]) for e in ev] == [("Hi", False), ("!", False), ("", True)]
    assert ev[0] == {"index": 0, "content": "Hi", "tokens": [1], "stop": False, "id_slot": 0,
                     "tokens_predicted": 1, "tokens_evaluated": 5}
    assert ev[2]["prompt"] == "x" and ev[2]["tokens"] == [] and ev[2]["generation_settings"]["n_ctx"] == 2048


def test_an_error_ends_every_stream_at_once():
    native = CompletionRequest(tasks=[TaskRequest(prompt=[1])] * 2, prompts=["x"] * 2, prompt_ids=[[1]] * 2,
                               stream=True)
    for answer in (chat(n=2, include_usage=True), build(TextCompletion, native), build(NativeCompletion, native)):
        ev = payloads(answer, [(0, partial("Hi", 1)), (1, ErrorEvent(TaskFailed("decode failed"))),
                               (0, FinalEvent(result()))])
        assert ev[-1] == {"error": {"code": 500, "message": "decode failed", "type": "server_error"}}
        assert "[DONE]" not in ev and len(ev) == (3 if isinstance(answer, ChatCompletion) else 2)
    ev = payloads(chat(), [(0, ErrorEvent(PromptTooLong(3000, 2048)))])  # before any chunk: no role chunk
    assert ev == [{"error": {"code": 400, "type": "exceed_context_size_error", "n_prompt_tokens": 3000,
                             "n_ctx": 2048, "message": str(PromptTooLong(3000, 2048))}}]


def test_whole_answers():
    r1, r2 = result(n_decoded=2, n_prompt=5, n_cached=1), result(n_decoded=3, n_prompt=5, n_cached=1,
                                                                  stop_type="eos")
    whole = chat(n=2).whole([r1, r2])
    assert whole["object"] == "chat.completion" and [c["finish_reason"] for c in whole["choices"]] == ["length",
                                                                                                        "stop"]
    assert whole["usage"]["prompt_tokens"] == 5 and whole["usage"]["completion_tokens"] == 5  # one prompt
    req = CompletionRequest(tasks=[TaskRequest(prompt=[1])] * 2, prompts=["a", "b"], prompt_ids=[[1], [2]],
                            stream=False)
    text = build(TextCompletion, req).whole([r1, r2])
    assert text["usage"] == usage([r1, r2]) and text["usage"]["prompt_tokens"] == 10  # a prompt per task
    native = build(NativeCompletion, req).whole([r1, r2])
    assert [o["prompt"] for o in native] == ["a", "b"] and native[0]["content"] == "Hi!"
    req.response_fields = ["content", "generation_settings/n_ctx", 3, "nope", "content/x", "stopping_word"]
    picked = build(NativeCompletion, req).whole([r1, r2])[1]
    assert picked == {"content": "Hi!", "generation_settings/n_ctx": 2048, "stopping_word": ""}


# -- chats with tool calls and reasoning (the output read with the request's chat syntax) -------

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}
HERMES = ChatSyntax(format="Hermes 2 Pro", tools=[WEATHER])
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call>'


def tool_chat(syntax: ChatSyntax = HERMES, stream: bool = True) -> ChatCompletion:
    return build(ChatCompletion, ChatRequest(tasks=[TaskRequest(prompt=[1, 2], stream=stream)], stream=stream,
                                             syntax=syntax))


def pieces_of(text: str, *cuts: int) -> list:
    bounds = [0, *cuts, len(text)]
    return [(0, partial(text[a:b], k + 1)) for k, (a, b) in enumerate(zip(bounds, bounds[1:]))]


def test_streamed_tool_call_deltas_as_the_openai_sdk_accumulates_them():
    from openai.lib.streaming.chat import ChatCompletionStreamState
    from openai.types.chat import ChatCompletionChunk

    text = "Let me check. " + CALL
    events = pieces_of(text, 8, 16, 20, 40, 60, 75) + [(0, FinalEvent(result(text, stop_type="eos")))]
    ev = payloads(tool_chat(), events)
    deltas = [e["choices"][0]["delta"] for e in ev[1:-1]]
    assert "".join(d.get("content") or "" for d in deltas) == "Let me check. "  # no trigger text leaks
    calls = [c for d in deltas for c in d.get("tool_calls", [])]
    assert calls[0]["index"] == 0 and calls[0]["id"] and calls[0]["function"]["name"] == "get_weather"
    assert all(c["index"] == 0 and "name" not in c["function"] for c in calls[1:])  # the name once
    assert "".join(c["function"]["arguments"] for c in calls) == '{"location":"Paris"}'
    assert ev[-2]["choices"][0]["finish_reason"] == "tool_calls" and ev[-1] == "[DONE]"
    state = ChatCompletionStreamState()
    for e in ev[:-1]:
        state.handle_chunk(ChatCompletionChunk.model_validate(e))
    msg = state.get_final_completion().choices[0].message
    assert msg.content == "Let me check. " and msg.tool_calls[0].id == calls[0]["id"]
    assert (msg.tool_calls[0].function.name, msg.tool_calls[0].function.arguments) == \
        ("get_weather", '{"location":"Paris"}')


def test_whole_message_with_tool_calls_and_reasoning():
    whole = tool_chat(stream=False).whole([result("<think>Weather needs a tool.</think>\n" + CALL, stop_type="eos")])
    choice = whole["choices"][0]
    msg = choice["message"]
    assert choice["finish_reason"] == "tool_calls" and msg["content"] is None
    assert msg["reasoning_content"] == "Weather needs a tool."
    assert msg["tool_calls"] == [{"type": "function", "id": msg["tool_calls"][0]["id"],
                                  "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'}}]
    assert len(msg["tool_calls"][0]["id"]) > 8
    cut = tool_chat(stream=False).whole([result(CALL, stop_type="limit")])  # cut short: "length", as llama-server
    assert cut["choices"][0]["finish_reason"] == "length"


def test_reasoning_streams_apart_and_plain_text_as_it_comes():
    text = "<think>Hmm.</think>Hello"
    ev = payloads(tool_chat(ChatSyntax()), pieces_of(text, 3, 9, 19) + [(0, FinalEvent(result(text, stop_type="eos")))])
    deltas = [e["choices"][0]["delta"] for e in ev[1:-2]]
    assert deltas == [{"reasoning_content": "Hm"}, {"reasoning_content": "m."}, {"content": "Hello"}]
    assert ev[-2]["choices"][0]["finish_reason"] == "stop"
    plain = payloads(chat(), pieces_of("a <b> c", 2, 4) + [(0, FinalEvent(result("a <b> c")))])
    assert [e["choices"][0]["delta"] for e in plain[1:-2]] == [{"content": "a "}, {"content": "<b"}, {"content": "> c"}]


class PieceTokenizer:
    n_vocab = 16

    def piece(self, tid: int, special: bool) -> bytes:
        return b"t%d" % tid

    def all_pieces(self, special: bool) -> list[bytes]:
        return [self.piece(i, special) for i in range(self.n_vocab)]


def test_probabilities_of_held_back_text_go_with_the_next_delta():
    import numpy as np

    from pyllama.sampling import TokenProbs

    def with_probs(text: str, tid: int) -> PartialEvent:
        tp = TokenProbs(token=tid, prob=0.5, top_ids=np.array([tid], dtype=np.int32),
                        top_probs=np.array([0.5], dtype=np.float32))
        return PartialEvent(content=text, tokens=[tid], probs=[tp], n_decoded=tid, n_prompt=5, id_slot=0)

    answer = ChatCompletion(ChatRequest(tasks=[TaskRequest(prompt=[1], stream=True)], stream=True,
                                        syntax=ChatSyntax()), model="m", tokenizer=PieceTokenizer(), n_ctx=2048)
    text = "<thi" + "s is it"
    ev = payloads(answer, [(0, with_probs("<thi", 1)), (0, with_probs("s is it", 2)),
                           (0, FinalEvent(result(text, stop_type="eos")))])
    chunks = [e["choices"][0] for e in ev[1:-1]]
    assert chunks[0]["delta"] == {"content": text}  # "<thi" waited: it might have opened <think>
    assert [p["id"] for p in chunks[0]["logprobs"]["content"]] == [1, 2]
    assert chunks[1]["finish_reason"] == "stop" and "logprobs" not in chunks[1]
