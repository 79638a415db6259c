"""Chat templates: the models' own Jinja templates render as llama-server rendered
them; llama-server's named formats; the sandbox and its helpers."""

from __future__ import annotations

import json

import pytest

from helpers.golden import DATA
from pyllama.chat import ChatTemplate, ChatTemplateError
from pyllama.chat.builtin import BUILTIN
from pyllama.gguf_file import GGUFFile
from pyllama.tokenizer import Tokenizer

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a planet."}]


@pytest.mark.parametrize("model,ref", [("smollm2_path", "smollm2-135m-instruct-q4_1"),
                                       ("gemma3_path", "gemma-3-270m-q4_k_m")])
def test_model_templates_render_like_llama_server(model, ref, request):
    g = GGUFFile(request.getfixturevalue(model))
    tok = Tokenizer.from_gguf(g)
    # this gemma GGUF carries no template: llama-server fell back to chatml, and so do we
    t = ChatTemplate(g.metadata.get("tokenizer.chat_template"), bos_token=tok.tokens[tok.bos],
                     eos_token=tok.tokens[tok.eos])
    records = [json.loads(line) for line in (DATA / f"{ref}.jsonl").read_text().splitlines()]
    chats = [r for r in records if r["kind"] == "chat"]
    assert len(chats) == 3
    for r in chats:
        assert t.render(r["messages"]) == r["rendered_prompt"]
        assert len(tok.tokenize(r["rendered_prompt"], add_special=True, parse_special=True)) == \
            r["usage"]["prompt_tokens"]


EXPECTED = {
    "chatml": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
              "Hello!<|im_end|>\n<|im_start|>user\nName a planet.<|im_end|>\n<|im_start|>assistant\n",
    "llama3": "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user"
              "<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nName a planet.<|eot_id|><|start_header_id|>assistant"
              "<|end_header_id|>\n\n",
    "gemma": "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
             "<start_of_turn>user\nName a planet.<end_of_turn>\n<start_of_turn>model\n",
    "llama2-sys": "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]Hello!</s>[INST] Name a planet. [/INST]",
    "mistral-v7": "[SYSTEM_PROMPT] Be brief.[/SYSTEM_PROMPT][INST] Hi[/INST] Hello!</s>[INST] Name a planet.[/INST]",
    "phi3": "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\n"
            "Name a planet.<|end|>\n<|assistant|>\n",
    "vicuna": "Be brief.\n\nUSER: Hi\nASSISTANT: Hello!</s>\nUSER: Name a planet.\nASSISTANT:",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_named_formats(name):
    assert ChatTemplate(name).render(MSGS) == EXPECTED[name]


def test_every_named_format_renders():
    for name in BUILTIN:
        out = ChatTemplate(name).render(MSGS)
        assert "Name a planet." in out, name


def test_chatml_is_the_fallback_and_generation_prompt_is_optional():
    assert ChatTemplate(None).render(MSGS[:2], add_generation_prompt=False) == \
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"


def test_sandbox_helpers_and_errors():
    t = ChatTemplate("{{ messages[0]['content'] | tojson }}{{ strftime_now('%Y') | length }}{{ bos_token }}",
                     bos_token="<s>")
    assert t.render([{"role": "user", "content": "é"}]) == '"é"4<s>'
    with pytest.raises(ChatTemplateError, match="nope"):
        ChatTemplate("{{ raise_exception('nope') }}").render(MSGS)
    with pytest.raises(ChatTemplateError):
        ChatTemplate("{% for %}")
    with pytest.raises(ChatTemplateError):  # the sandbox refuses attribute escapes
        ChatTemplate("{{ ''.__class__.__mro__[1].__subclasses__() }}").render(MSGS)


def test_detect_format_by_markers(smollm2_path):
    from pyllama.chat.builtin import detect_format
    g = GGUFFile(smollm2_path)
    assert detect_format(g.metadata["tokenizer.chat_template"]) == "chatml"
    assert detect_format("{{ '<start_of_turn>' + role }}") == "gemma"
    assert detect_format("{{ '<|start_header_id|>' }}{{ '<|end_header_id|>' }}") == "llama3"
    assert detect_format("[INST] <<SYS>> {{ x }}") == "llama2-sys"
    assert detect_format("something else entirely") is None
