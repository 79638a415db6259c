"""An agent framework's first call: LangChain's `ChatOpenAI(...).bind_tools([...])`
against the server (SmolLM2 with Qwen 2.5's tool template), whole and streamed, gets
`tool_calls` back with arguments as a dict that validates against the tool's schema;
the tool's answer goes back as a ToolMessage and the conversation goes on."""

from __future__ import annotations

import jsonschema
import pytest

from helpers.chat_cases import TEMPLATES
from helpers.server_process import ServerProcess

SCHEMA = {"type": "object", "properties": {"location": {"type": "string", "enum": ["Paris", "London", "Tokyo"]}},
          "required": ["location"]}


@pytest.fixture(scope="module")
def llm(smollm2_path):
    lc = pytest.importorskip("langchain_openai", reason="langchain-openai is a test extra")
    s = ServerProcess(smollm2_path, "--jinja", "--chat-template-file",
                      str(TEMPLATES / "Qwen-Qwen2.5-7B-Instruct.jinja"), "-np", "1", "-c", "4096", "-t", "2")
    try:
        yield lc.ChatOpenAI(base_url=s.url + "/v1", api_key="unused", model="smollm2", temperature=0,
                            max_tokens=96)
    finally:
        s.stop()


def get_weather(location: str) -> str:
    """Current weather of a city."""
    return "sunny"


TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city",
                                         "parameters": SCHEMA}}


def test_bind_tools_gets_tool_calls(llm):
    from langchain_core.messages import HumanMessage, ToolMessage

    bound = llm.bind_tools([TOOL], tool_choice="get_weather")
    ask = [HumanMessage("What is the weather in Paris?")]
    reply = bound.invoke(ask)
    assert len(reply.tool_calls) == 1, reply
    call = reply.tool_calls[0]
    assert call["name"] == "get_weather" and call["id"]
    jsonschema.validate(call["args"], SCHEMA)
    assert reply.response_metadata["finish_reason"] == "tool_calls"

    chunks = list(bound.stream(ask))  # streamed: LangChain joins the tool_call_chunks
    whole = chunks[0]
    for c in chunks[1:]:
        whole = whole + c
    assert [(c["name"], c["args"]) for c in whole.tool_calls] == [("get_weather", call["args"])]

    answer = llm.bind_tools([TOOL]).invoke(ask + [reply, ToolMessage("sunny, 21 C", tool_call_id=call["id"])])
    assert isinstance(answer.content, str) and (answer.content or answer.tool_calls)


def test_bind_tools_from_a_python_function(llm):
    reply = llm.bind_tools([get_weather], tool_choice="any").invoke("Weather in Tokyo?")
    assert reply.tool_calls and reply.tool_calls[0]["name"] == "get_weather"
    assert isinstance(reply.tool_calls[0]["args"].get("location"), str)
