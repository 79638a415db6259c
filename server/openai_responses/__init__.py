"""OpenAI's Responses API as llama-server serves it: a Responses body is converted into
a chat-completions body (llama-server's `convert_responses_to_chatcmpl`) and run as a
chat; the chat's output becomes a `response` object, or the typed events of its stream.

The request. `input` is a string (one user turn) or a list of items: messages (`user`,
`system`, `developer` with `input_text` parts; `assistant` ones with `output_text` or
`refusal` parts), `function_call` items (a call of the assistant), `function_call_output`
items (a tool turn) and `reasoning` items (the assistant's reasoning_content). Items that
follow an assistant turn (a message, a call, reasoning) are merged into it, as
llama-server does, so a model's whole earlier output fed back comes out as one assistant
message. `instructions` is a system turn first; function tools are flattened
(`{"type": "function", "name", "parameters", ...}`, `strict` true unless given) and any
other kind of tool is left out; `max_output_tokens` is `max_tokens`; `reasoning.effort`
is `reasoning_effort`; every other field is read as the chat route reads it
(temperature, top_p, tool_choice, parallel_tool_calls, stream, ...). As in llama-server,
`text.format` is not read and `previous_response_id` is refused: no response is kept.

Where this departs from llama-server, on purpose:
- an assistant message item without `"type": "message"` (the SDK's EasyInputMessage) is
  read as an assistant turn; llama-server cannot tell what it is (400);
- `instructions` and `tools` set to null count as absent (llama-server makes an empty
  system turn, or refuses null tools); `instructions` that is not a string is a 400
  (llama-server makes an empty system turn of it);
- `n` other than 1 is a 400: a response is one output (llama-server answers a list).
"""

from .answer import ResponsesAnswer
from .request import chat_body, responses_request, input_tokens, responses_input_tokens, ResponsesRequest

__all__ = ["ResponsesAnswer", "ResponsesRequest", "chat_body", "input_tokens", "responses_input_tokens", "responses_request"]
