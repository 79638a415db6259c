"""Test data for chat templates with tools: the tools, a conversation using them, what
each template in tests/data/chat_templates is detected as, and canned model outputs
of each chat format with the message they must parse into.

Canned cases per format: `single` (exactly what the `required` grammar lets the model
write, so it also checks the grammar), `parallel`, `text_before`, `reasoning` and
`malformed` (which becomes plain content), plus format-specific extras. Where a format
cannot express a case (no reasoning markers, calls that must be the whole reply) the
case shows what the parser does instead, and says so."""

from __future__ import annotations

from pathlib import Path

from pyllama.chat import ChatMsg, ToolCall

TEMPLATES = Path(__file__).resolve().parents[1] / "data" / "chat_templates"

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "The city"},
                                                    "days": {"type": "integer", "description": "Days to forecast"}},
                   "required": ["location"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Current time in a timezone",
    "parameters": {"type": "object", "properties": {"timezone": {"type": "string", "description": "IANA name"}},
                   "required": ["timezone"]}}}
PYTHON = {"type": "function", "function": {
    "name": "python", "description": "Run Python code",
    "parameters": {"type": "object", "properties": {"code": {"type": "string", "description": "The code"}},
                   "required": ["code"]}}}
TOOLS = [WEATHER, TIME, PYTHON]

W, T = '{"location":"Paris"}', '{"timezone":"Europe/Paris"}'


def msg(content: str = "", reasoning: str = "", calls=()) -> ChatMsg:
    return ChatMsg(content, reasoning, [ToolCall(c[0], c[1], c[2] if len(c) > 2 else "") for c in calls])


def conversation(parallel: bool, end_with_tool: bool = False) -> list[dict]:
    """system, user, assistant (reasoning + tool calls), tool results, assistant, user;
    or up to the tool results (the reply to them is what is generated next)."""
    calls = [{"id": "call00001", "type": "function", "function": {"name": "get_weather",
                                                                  "arguments": '{"location": "Paris"}'}}]
    results = [{"role": "tool", "tool_call_id": "call00001", "name": "get_weather", "content": "Sunny, 21C"}]
    if parallel:
        calls.append({"id": "call00002", "type": "function", "function": {"name": "get_time",
                                                                          "arguments": {"timezone": "Europe/Paris"}}})
        results.append({"role": "tool", "tool_call_id": "call00002", "name": "get_time", "content": "14:05"})
    msgs = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": None, "reasoning_content": "The user wants the weather.",
             "tool_calls": calls}] + results
    if end_with_tool:
        return msgs
    return msgs + [{"role": "assistant", "content": "It is sunny and 21C.", "reasoning_content": "Easy answer."},
                   {"role": "user", "content": "Thanks! And tomorrow?"}]


# template -> (format with tools, capabilities that must be detected as given)
EXPECTED = {
    "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja": ("Command R7B", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=True, supports_system_role=True,
        supports_thinking=True)),
    "GLM-4.6.jinja": ("GLM 4.5", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=True, supports_system_role=True,
        supports_thinking=True, requires_object_arguments=True)),
    "HuggingFaceTB-SmolLM3-3B.jinja": ("Generic", dict(
        supports_tools=False, supports_tool_calls=False, supports_system_role=True, supports_thinking=True)),
    "MiniMax-M2.jinja": ("MiniMax-M2", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=True, supports_system_role=True,
        supports_thinking=True, requires_object_arguments=True)),
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja": ("Hermes 2 Pro", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=True, supports_system_role=True,
        supports_thinking=False, requires_object_arguments=False)),
    "Qwen-Qwen2.5-7B-Instruct.jinja": ("Hermes 2 Pro", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=True, supports_system_role=True,
        supports_thinking=False, requires_object_arguments=True)),
    "Qwen-Qwen3-0.6B.jinja": ("Hermes 2 Pro", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=True, supports_system_role=True,
        supports_thinking=True, supports_preserve_reasoning=False)),
    "Qwen3-Coder.jinja": ("Qwen3 Coder", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=True, supports_system_role=True,
        requires_object_arguments=True)),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja": ("DeepSeek R1", dict(
        supports_tools=False, supports_tool_calls=True, supports_system_role=True, supports_thinking=True)),
    "deepseek-ai-DeepSeek-V3.1.jinja": ("DeepSeek V3.1", dict(
        supports_tools=False, supports_tool_calls=True, supports_system_role=True, supports_thinking=True)),
    "fireworks-ai-llama-3-firefunction-v2.jinja": ("FireFunction v2", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=True, supports_system_role=True)),
    "google-gemma-2-2b-it.jinja": ("Generic", dict(
        supports_tools=False, supports_tool_calls=False, supports_system_role=False)),
    "ibm-granite-granite-3.3-2B-Instruct.jinja": ("Granite", dict(
        supports_tools=True, supports_tool_calls=False, supports_system_role=True, supports_thinking=True)),
    "llama-cpp-deepseek-r1.jinja": ("DeepSeek R1", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=True, supports_system_role=True,
        supports_thinking=True)),
    "meetkai-functionary-medium-v3.1.jinja": ("Functionary v3.1 Llama 3.1", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=True, supports_system_role=True)),
    "meetkai-functionary-medium-v3.2.jinja": ("Functionary v3.2", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=True, supports_system_role=True,
        requires_object_arguments=False)),
    "meta-llama-Llama-3.1-8B-Instruct.jinja": ("Llama 3.x with builtin tools", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=False, supports_system_role=True,
        requires_object_arguments=True)),
    "meta-llama-Llama-3.2-3B-Instruct.jinja": ("Llama 3.x", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=False, supports_system_role=True,
        requires_object_arguments=True)),
    "microsoft-Phi-3.5-mini-instruct.jinja": ("Generic", dict(
        supports_tools=False, supports_tool_calls=False, supports_system_role=True)),
    "mistralai-Ministral-3-14B-Reasoning-2512.jinja": ("Ministral 3", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=True, supports_system_role=True,
        supports_thinking=True)),
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": ("Mistral Nemo", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=True, supports_system_role=True,
        requires_object_arguments=True)),
    "moonshotai-Kimi-K2.jinja": ("Kimi K2", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=True, supports_system_role=True)),
    "openai-gpt-oss-120b.jinja": ("GPT-OSS", dict(
        supports_tools=True, supports_tool_calls=True, supports_parallel_tool_calls=False, supports_system_role=True,
        supports_thinking=True)),
}

# templates that show the reasoning of the turn being continued (conversation ending with tool results)
SHOWS_REASONING = {"Qwen-Qwen3-0.6B.jinja", "MiniMax-M2.jinja", "GLM-4.6.jinja",
                   "mistralai-Ministral-3-14B-Reasoning-2512.jinja",
                   "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", "openai-gpt-oss-120b.jinja"}

HERMES_W = '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call>'
HERMES_T = '<tool_call>\n{"name": "get_time", "arguments": {"timezone": "Europe/Paris"}}\n</tool_call>'
R1_W = ("<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"location\": \"Paris\"}\n```"
        "<｜tool▁call▁end｜>")
R1_T = ("<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"timezone\": \"Europe/Paris\"}\n```"
        "<｜tool▁call▁end｜>")
V31_W = '<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"location": "Paris"}<｜tool▁call▁end｜>'
V31_T = '<｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{"timezone": "Europe/Paris"}<｜tool▁call▁end｜>'
BEGIN, END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
KIMI_W = '<|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{"location": "Paris"}<|tool_call_end|>'
KIMI_T = '<|tool_call_begin|>functions.get_time:1<|tool_call_argument_begin|>{"timezone": "Europe/Paris"}<|tool_call_end|>'
KS, KE = "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"
MM_W = '<invoke name="get_weather">\n<parameter name="location">Paris</parameter>\n</invoke>\n'
MM_T = '<invoke name="get_time">\n<parameter name="timezone">Europe/Paris</parameter>\n</invoke>\n'
MMS, MME = "<minimax:tool_call>\n", "</minimax:tool_call>"
GLM_W = "<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>Paris</arg_value>\n</tool_call>"
GLM_T = "<tool_call>get_time\n<arg_key>timezone</arg_key>\n<arg_value>Europe/Paris</arg_value>\n</tool_call>"
QC_W = "<tool_call>\n<function=get_weather>\n<parameter=location>\nParis\n</parameter>\n</function>\n</tool_call>"
QC_T = "<tool_call>\n<function=get_time>\n<parameter=timezone>\nEurope/Paris\n</parameter>\n</function>\n</tool_call>"
GPT_W = '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"location": "Paris"}'
GPT_T = '<|channel|>commentary to=functions.get_time <|constrain|>json<|message|>{"timezone": "Europe/Paris"}'
CR_W = '{"tool_call_id": "0", "tool_name": "get_weather", "parameters": {"location": "Paris"}}'
CR_T = '{"tool_call_id": "1", "tool_name": "get_time", "parameters": {"timezone": "Europe/Paris"}}'

WC, TC = ("get_weather", W), ("get_time", T)

# format -> case -> (output, expected message). Outputs of forced-open formats start inside the reasoning.
CANNED: dict[str, dict[str, tuple[str, ChatMsg]]] = {
    "Hermes 2 Pro": {
        "single": (HERMES_W, msg(calls=[WC])),
        "parallel": (HERMES_W + "\n" + HERMES_T, msg(calls=[WC, TC])),
        "text_before": ("Let me check.\n" + HERMES_W, msg("Let me check.\n", calls=[WC])),
        "reasoning": ("<think>\nThe user wants Paris.\n</think>\n\n" + HERMES_W,
                      msg(reasoning="The user wants Paris.", calls=[WC])),
        "malformed": ('<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"\n</tool_call>',
                      msg('<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"\n</tool_call>')),
        "function_tag": ('<function=get_weather>{"location": "Paris"}</function>', msg(calls=[WC])),
        "plain": ("<think>Easy.</think>It is sunny.", msg("It is sunny.", "Easy.")),
    },
    "Generic": {
        "single": ('{"tool_call": {"name": "get_weather", "arguments": {"location": "Paris"}}}', msg(calls=[WC])),
        "parallel": ('{"tool_calls": [{"name": "get_weather", "arguments": {"location": "Paris"}, "id": "call_1"}, '
                     '{"name": "get_time", "arguments": {"timezone": "Europe/Paris"}, "id": "call_2"}]}',
                     msg(calls=[WC + ("call_1",), TC + ("call_2",)])),
        # one JSON object is the whole reply: text before it is no call
        "text_before": ('Let me check. {"tool_call": {"name": "get_weather", "arguments": {"location": "Paris"}}}',
                        msg('Let me check. {"tool_call": {"name": "get_weather", "arguments": {"location": "Paris"}}}')),
        "reasoning": ('<think>Paris.</think>{"tool_call": {"name": "get_weather", "arguments": {"location": "Paris"}}}',
                      msg(reasoning="Paris.", calls=[WC])),
        "malformed": ('{"tool_call": {"name": "get_weather", "arguments": {"location": "Paris"}',
                      msg('{"tool_call": {"name": "get_weather", "arguments": {"location": "Paris"}')),
        "response": ('{"response": "It is sunny."}', msg("It is sunny.")),
    },
    "Llama 3.x": {
        "single": ('{"name": "get_weather", "parameters": {"location": "Paris"}}', msg(calls=[WC])),
        "parallel": ('{"name": "get_weather", "parameters": {"location": "Paris"}}\n'
                     '{"name": "get_time", "parameters": {"timezone": "Europe/Paris"}}', msg(calls=[WC, TC])),
        # the call must be the whole reply
        "text_before": ('Let me check. {"name": "get_weather", "parameters": {"location": "Paris"}}',
                        msg('Let me check. {"name": "get_weather", "parameters": {"location": "Paris"}}')),
        "reasoning": ('<think>Paris.</think>{"type": "function", "name": "get_weather", "parameters": {"location": "Paris"}}',
                      msg(reasoning="Paris.", calls=[WC])),
        "malformed": ('{"name": "get_weather", "parameters": {"location": }}',
                      msg('{"name": "get_weather", "parameters": {"location": }}')),
    },
    "Mistral Nemo": {
        "single": ('[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris"}, "id": "abc123DEF"}]',
                   msg(calls=[WC + ("abc123DEF",)])),
        "parallel": ('[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris"}, "id": "abc123DEF"}, '
                     '{"name": "get_time", "arguments": {"timezone": "Europe/Paris"}, "id": "xyz789XYZ"}]',
                     msg(calls=[WC + ("abc123DEF",), TC + ("xyz789XYZ",)])),
        "text_before": ('Let me check.[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris"}, '
                        '"id": "abc123DEF"}]', msg("Let me check.", calls=[WC + ("abc123DEF",)])),
        # no reasoning markers in this format: a <think> block stays content
        "reasoning": ('<think>Paris.</think>[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris"}, '
                      '"id": "abc123DEF"}]', msg("<think>Paris.</think>", calls=[WC + ("abc123DEF",)])),
        "malformed": ('[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris"}',
                      msg('[TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris"}')),
    },
    "Ministral 3": {
        "single": ('[TOOL_CALLS]get_weather[ARGS]{"location": "Paris"}', msg(calls=[WC])),
        "parallel": ('[TOOL_CALLS]get_weather[ARGS]{"location": "Paris"}[TOOL_CALLS]get_time[ARGS]'
                     '{"timezone": "Europe/Paris"}', msg(calls=[WC, TC])),
        "text_before": ('Let me check.[TOOL_CALLS]get_weather[ARGS]{"location": "Paris"}',
                        msg("Let me check.", calls=[WC])),
        "reasoning": ('[THINK]The user wants Paris.[/THINK][TOOL_CALLS]get_weather[ARGS]{"location": "Paris"}',
                      msg(reasoning="The user wants Paris.", calls=[WC])),
        "malformed": ('[TOOL_CALLS]get_weather[ARGS]{"location": ', msg('[TOOL_CALLS]get_weather[ARGS]{"location": ')),
    },
    "Functionary v3.2": {
        "single": ('get_weather\n{"location": "Paris"}', msg(calls=[WC])),
        "parallel": ('get_weather\n{"location": "Paris"}\n>>>get_time\n{"timezone": "Europe/Paris"}',
                     msg(calls=[WC, TC])),
        "text_before": ('all\nLet me check.\n>>>get_weather\n{"location": "Paris"}',
                        msg("Let me check.\n", calls=[WC])),
        # no reasoning markers: raw python instead
        "reasoning": ("python\nprint(6 * 7)", msg(calls=[("python", '{"code":"print(6 * 7)"}')])),
        "malformed": ('get_weather\n{"location": "Paris"', msg('get_weather\n{"location": "Paris"')),
        "plain": ("all\nIt is sunny.", msg("It is sunny.")),
    },
    "Functionary v3.1 Llama 3.1": {
        "single": ('<function=get_weather>{"location": "Paris"}</function>', msg(calls=[WC])),
        "parallel": ('<function=get_weather>{"location": "Paris"}</function>'
                     '<function=get_time>{"timezone": "Europe/Paris"}</function>', msg(calls=[WC, TC])),
        "text_before": ('Let me check.<function=get_weather>{"location": "Paris"}</function>',
                        msg("Let me check.", calls=[WC])),
        # no reasoning markers: the python tag instead
        "reasoning": ("<|python_tag|>print(6 * 7)", msg(calls=[("python", '{"code":"print(6 * 7)"}')])),
        "malformed": ('<function=get_weather>{"location": "Paris"</function>',
                      msg('<function=get_weather>{"location": "Paris"</function>')),
    },
    "FireFunction v2": {
        "single": (' functools[{"name": "get_weather", "arguments": {"location": "Paris"}}]', msg(calls=[WC])),
        "parallel": (' functools[{"name": "get_weather", "arguments": {"location": "Paris"}}, '
                     '{"name": "get_time", "arguments": {"timezone": "Europe/Paris"}}]', msg(calls=[WC, TC])),
        "text_before": ('Let me check. functools[{"name": "get_weather", "arguments": {"location": "Paris"}}]',
                        msg("Let me check.", calls=[WC])),
        "reasoning": ('<think>Paris.</think> functools[{"name": "get_weather", "arguments": {"location": "Paris"}}]',
                      msg("<think>Paris.</think>", calls=[WC])),  # no reasoning markers
        "malformed": (' functools[{"name": "get_weather", "arguments": {"location": "Paris"}',
                      msg(' functools[{"name": "get_weather", "arguments": {"location": "Paris"}')),
    },
    "Command R7B": {
        "single": (f"<|START_ACTION|>[\n    {CR_W}\n]<|END_ACTION|>", msg(calls=[WC + ("0",)])),
        "parallel": (f"<|START_ACTION|>[\n    {CR_W},\n    {CR_T}\n]<|END_ACTION|>",
                     msg(calls=[WC + ("0",), TC + ("1",)])),
        "text_before": (f"Let me check.<|START_ACTION|>[{CR_W}]<|END_ACTION|>", msg("Let me check.", calls=[WC + ("0",)])),
        "reasoning": (f"<|START_THINKING|>I will look up Paris.<|END_THINKING|><|START_ACTION|>[{CR_W}]<|END_ACTION|>",
                      msg(reasoning="I will look up Paris.", calls=[WC + ("0",)])),
        "malformed": (f"<|START_ACTION|>[{CR_W}", msg(f"<|START_ACTION|>[{CR_W}")),
        "response": ("<|START_RESPONSE|>It is sunny.<|END_RESPONSE|>", msg("It is sunny.")),
    },
    "DeepSeek R1": {  # thinking forced open by the prompt
        "single": (f"</think>\n\n{BEGIN}{R1_W}{END}", msg(calls=[WC])),
        "parallel": (f"</think>\n\n{BEGIN}{R1_W}\n{R1_T}{END}", msg(calls=[WC, TC])),
        "text_before": (f"</think>Let me check.\n{BEGIN}{R1_W}{END}", msg("Let me check.\n", calls=[WC])),
        "reasoning": (f"The user wants Paris.\n</think>\n\n{BEGIN}{R1_W}{END}",
                      msg(reasoning="The user wants Paris.", calls=[WC])),
        "malformed": (f"Hmm.</think>{BEGIN}<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
                      '{"location": \n```', msg(f"{BEGIN}<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
                                                '{"location": \n```', "Hmm.")),
    },
    "DeepSeek V3.1": {  # thinking forced open by the prompt
        "single": (f"</think>\n{BEGIN}{V31_W}{END}", msg(calls=[WC])),
        "parallel": (f"</think>{BEGIN}{V31_W}{V31_T}{END}", msg(calls=[WC, TC])),
        "text_before": (f"</think>Let me check.{BEGIN}{V31_W}{END}", msg("Let me check.", calls=[WC])),
        "reasoning": (f"The user wants Paris.</think>{BEGIN}{V31_W}{END}",
                      msg(reasoning="The user wants Paris.", calls=[WC])),
        "malformed": (f"</think>{BEGIN}<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{{\"location\": {END}",
                      msg(f"{BEGIN}<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{{\"location\": {END}")),
    },
    "GPT-OSS": {
        "single": (GPT_W, msg(calls=[WC])),
        "parallel": (GPT_W + "<|end|><|start|>assistant" + GPT_T, msg(calls=[WC, TC])),
        "text_before": ("<|channel|>commentary<|message|>Let me check.<|end|><|start|>assistant" + GPT_W,
                        msg("Let me check.", calls=[WC])),
        "reasoning": ("<|channel|>analysis<|message|>The user wants Paris.<|end|><|start|>assistant" + GPT_W,
                      msg(reasoning="The user wants Paris.", calls=[WC])),
        "malformed": ("It is sunny.", msg("It is sunny.")),
        "final": ("<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>It is sunny.",
                  msg("It is sunny.", "Easy.")),
        "in_role": (' to=functions.get_weather<|channel|>commentary json<|message|>{"location": "Paris"}',
                    msg(calls=[WC])),
    },
    "Granite": {
        "single": ('<|tool_call|>[{"name": "get_weather", "arguments": {"location": "Paris"}}]', msg(calls=[WC])),
        "parallel": ('<|tool_call|>[{"name": "get_weather", "arguments": {"location": "Paris"}}, '
                     '{"name": "get_time", "arguments": {"timezone": "Europe/Paris"}}]', msg(calls=[WC, TC])),
        "text_before": ('Let me check.<|tool_call|>[{"name": "get_weather", "arguments": {"location": "Paris"}}]',
                        msg("Let me check.", calls=[WC])),
        "reasoning": ('<think>The user wants Paris.</think><|tool_call|>[{"name": "get_weather", "arguments": '
                      '{"location": "Paris"}}]', msg(reasoning="The user wants Paris.", calls=[WC])),
        "malformed": ('<|tool_call|>[{"name": "get_weather", "arguments": {"location": "Paris"}',
                      msg('<|tool_call|>[{"name": "get_weather", "arguments": {"location": "Paris"}')),
        "response": ("<think>Easy.</think><response>It is sunny.</response>", msg("It is sunny.", "Easy.")),
    },
    "Kimi K2": {
        "single": (KS + KIMI_W + KE, msg(calls=[WC + ("functions.get_weather:0",)])),
        "parallel": (KS + KIMI_W + KIMI_T + KE, msg(calls=[WC + ("functions.get_weather:0",),
                                                           TC + ("functions.get_time:1",)])),
        "text_before": ("Let me check." + KS + KIMI_W + KE, msg("Let me check.", calls=[WC + ("functions.get_weather:0",)])),
        "reasoning": ("<think>The user wants Paris.</think>" + KS + KIMI_W + KE,
                      msg(reasoning="The user wants Paris.", calls=[WC + ("functions.get_weather:0",)])),
        "malformed": (KS + '<|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{"location": ' + KE,
                      msg(KS + '<|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{"location": ' + KE)),
    },
    "MiniMax-M2": {  # thinking forced open by the prompt
        "single": ("</think>\n\n" + MMS + MM_W + MME, msg(calls=[WC])),
        "parallel": ("</think>\n\n" + MMS + MM_W + MM_T + MME, msg(calls=[WC, TC])),
        "text_before": ("</think>\n\nLet me check.\n" + MMS + MM_W + MME, msg("Let me check.\n", calls=[WC])),
        "reasoning": ("The user wants Paris.\n</think>\n\n" + MMS + MM_W + MME,
                      msg(reasoning="The user wants Paris.", calls=[WC])),
        "malformed": ('</think>\n\n<minimax:tool_call>\n<invoke name="get_weather">\n<parameter name="location">Paris',
                      msg('<minimax:tool_call>\n<invoke name="get_weather">\n<parameter name="location">Paris')),
        "typed": ("</think>" + MMS + '<invoke name="get_weather">\n<parameter name="location">Paris</parameter>\n'
                  '<parameter name="days">3</parameter>\n</invoke>\n' + MME,
                  msg(calls=[("get_weather", '{"location":"Paris","days":3}')])),
    },
    "GLM 4.5": {
        "single": (GLM_W, msg(calls=[WC])),
        "parallel": (GLM_W + "\n" + GLM_T, msg(calls=[WC, TC])),
        "text_before": ("Let me check.\n" + GLM_W, msg("Let me check.\n", calls=[WC])),
        "reasoning": ("<think>The user wants Paris.</think>\n" + GLM_W,
                      msg(reasoning="The user wants Paris.", calls=[WC])),
        "malformed": ("<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>Paris",
                      msg("<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>Paris")),
        "string_stays_string": ("<tool_call>get_time\n<arg_key>timezone</arg_key>\n<arg_value>42</arg_value>\n"
                                "</tool_call>", msg(calls=[("get_time", '{"timezone":"42"}')])),
    },
    "Qwen3 Coder": {
        "single": (QC_W, msg(calls=[WC])),
        "parallel": (QC_W + "\n" + QC_T, msg(calls=[WC, TC])),
        "text_before": ("Let me check.\n" + QC_W, msg("Let me check.\n", calls=[WC])),
        "reasoning": ("<think>The user wants Paris.</think>\n" + QC_W,
                      msg(reasoning="The user wants Paris.", calls=[WC])),
        "malformed": ("<tool_call>\n<function=get_weather>\n<parameter=location>\nParis\n</function>",
                      msg("<tool_call>\n<function=get_weather>\n<parameter=location>\nParis\n</function>")),
        "typed": ("<tool_call>\n<function=get_weather>\n<parameter=location>\nParis\n</parameter>\n<parameter=days>\n3\n"
                  "</parameter>\n</function>\n</tool_call>", msg(calls=[("get_weather", '{"location":"Paris","days":3}')])),
    },
}
CANNED["Llama 3.x with builtin tools"] = {
    **CANNED["Llama 3.x"],
    "builtin": ('<|python_tag|>python.call(code="print(6 * 7)")', msg(calls=[("python", '{"code":"print(6 * 7)"}')])),
}

# the format's cases that are not a tool call the model could be made to write
NOT_A_CALL = {"malformed", "plain", "response", "final", "text_before", "reasoning"}
