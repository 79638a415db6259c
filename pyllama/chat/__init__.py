"""Chat: messages rendered into a prompt with the model's template; tool calls and
reasoning in each model family's format (grammar to constrain them, parser to read
them back, streaming deltas).

The server's path for one chat request:

    params = apply_chat(template, ChatInputs(messages, tools=..., tool_choice=..., ...))
    # params.prompt -> tokens; params.additional_stops -> more stop strings;
    # task_fields.grammar_fields(params, tokenizer) -> the TaskRequest's grammar fields
    stream = ChatStream(params.syntax)          # streamed: deltas per generated chunk
    deltas = stream.update(text_so_far)
    message, last = stream.finish(full_text)    # then message.to_openai()
    # not streamed: assign_ids(parse_output(full_text, params.syntax), params.syntax)

`template.caps.to_json()` is /props' `chat_template_caps`."""

from .apply import ChatInputs, ChatParams, apply_chat
from .caps import TemplateCaps
from .formats import FORMAT_NAMES, select_format, template_format
from .messages import ChatMsg, ToolCall, normalize_messages, normalize_tools, parse_tool_choice
from .output_parser import ChatSyntax
from .parse import parse_output
from .stream import ChatStream, assign_ids
from .template import ChatTemplate, ChatTemplateError

__all__ = ["ChatTemplate", "ChatTemplateError", "TemplateCaps", "ChatInputs", "ChatParams", "apply_chat",
           "ChatSyntax", "ChatMsg", "ToolCall", "parse_output", "ChatStream", "assign_ids", "FORMAT_NAMES",
           "select_format", "template_format", "normalize_messages", "normalize_tools", "parse_tool_choice"]
