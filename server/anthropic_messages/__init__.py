"""Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens) as llama-server
serves it: a Messages body is turned into an OpenAI chat body, which schemas.chat then
renders, tokenizes and constrains like any chat (so a conversation costs the same
tokens on both routes), and the output comes back in Anthropic's shapes: a `message`
object, or its stream of named events.

The request, as llama-server converts it: `system` (a string or text blocks, joined)
becomes a system message; each turn's blocks become OpenAI messages: `text` blocks the
content, `thinking` blocks the assistant's reasoning_content, `tool_use` blocks its
tool_calls (`input` as compact JSON text), `tool_result` blocks tool messages (their
text joined; `is_error` is not shown to the model, as in llama-server); `tools`
(`name`, `description`, `input_schema`) become function tools; `tool_choice` auto /
any / tool / none; `stop_sequences` the stop strings; `max_tokens` defaults to 4096
(llama-server does not require it); `temperature`, `top_p`, `top_k`, `stream` and
`chat_template_kwargs` pass through; `metadata` is ignored.

Where this departs from llama-server, on purpose:
- What llama-server skips silently is a 400 that names it: a role other than user or
  assistant, an unknown block, a block in the wrong turn, a field of the wrong type.
  Document blocks are refused; an image block (in a turn or a tool result) is
  llama-server's 500 "image input is not supported" (no multimodal projector here).
- A user turn's tool results come before its text: templates need tool messages right
  after the assistant turn that called (llama-server puts the text first).
- `tool_choice` {"type": "tool", "name"} forces that tool (llama-server: any tool);
  {"type": "none"} renders the tools and calls none (llama-server: auto).
- `thinking` {"type": "enabled"} turns the template's thinking on, {"type": "disabled"}
  off; `budget_tokens` is the reasoning budget (reasoning_budget_tokens: its end is
  forced after that many tokens of reasoning).
- `stop_reason` is "stop_sequence", with `stop_sequence` set, when one of the request's
  stop sequences ended the output (llama-server says "end_turn", and names any stop
  string, the chat format's own included).
- The stream closes each content block before the next one starts (llama-server leaves
  them open until the end), and usage in `message_delta` carries the input counts too.
- Message ids are Anthropic's `msg_…` (llama-server reuses its `chatcmpl-…` ids); tool_use
  ids are the chat route's, as llama-server's are.
- Errors here have Anthropic's envelope, which is llama-server's plus `"type": "error"`
  (see error_body); a failure mid-stream is an `event: error`, which the SDK raises
  (a bare `data:` error line, as other streams end, would be ignored by it).
"""

from .answer import AnthropicMessage, error_body, content_blocks, usage
from .request import parse, count_tokens, to_chat_body, MessagesRequest, steady_billing_header

__all__ = ["AnthropicMessage", "MessagesRequest", "content_blocks", "count_tokens", "error_body", "parse", "steady_billing_header", "to_chat_body", "usage"]
