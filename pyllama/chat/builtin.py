"""llama-server's built-in named chat formats (`--chat-template NAME`), for models
whose GGUF carries no template or a template to be replaced. Each formatter takes
the messages ({role, content}) and add_generation_prompt, and writes the prompt
string llama.cpp's format of that name writes."""

from __future__ import annotations

from typing import Callable

WS = " \t\n\r\f\v"
Messages = list[dict]


def _trim(s: str) -> str:
    return s.strip(WS)


# llama.cpp's ChatML as a Jinja template (common/chat.cpp CHATML_TEMPLATE_SRC): with --jinja,
# the template `--chat-template chatml` names, and the one of a model that has none
CHATML_JINJA = (
    "{%- for message in messages -%}\n"
    "  {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\n' -}}\n"
    "{%- endif -%}"
)


def chatml(msgs: Messages, add: bool) -> str:
    out = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in msgs)
    return out + ("<|im_start|>assistant\n" if add else "")


def _mistral_v7(trailing: str) -> Callable[[Messages, bool], str]:
    def fmt(msgs: Messages, add: bool) -> str:
        out = []
        for m in msgs:
            if m["role"] == "system":
                out.append(f"[SYSTEM_PROMPT]{trailing}{m['content']}[/SYSTEM_PROMPT]")
            elif m["role"] == "user":
                out.append(f"[INST]{trailing}{m['content']}[/INST]")
            else:
                out.append(f"{trailing}{m['content']}</s>")
        return "".join(out)
    return fmt


def _mistral(leading: str, trailing: str, trim_assistant: bool) -> Callable[[Messages, bool], str]:
    def fmt(msgs: Messages, add: bool) -> str:
        out, inside = [], False
        for m in msgs:
            if not inside:
                out.append(f"{leading}[INST]{trailing}")
                inside = True
            if m["role"] == "system":
                out.append(m["content"] + "\n\n")
            elif m["role"] == "user":
                out.append(m["content"] + leading + "[/INST]")
            else:
                c = _trim(m["content"]) if trim_assistant else m["content"]
                out.append(f"{trailing}{c}</s>")
                inside = False
        return "".join(out)
    return fmt


def _llama2(system: bool, bos_inside: bool, strip: bool) -> Callable[[Messages, bool], str]:
    def fmt(msgs: Messages, add: bool) -> str:
        out, inside = ["[INST] "], True
        for m in msgs:
            c = _trim(m["content"]) if strip else m["content"]
            if not inside:
                inside = True
                out.append("<s>[INST] " if bos_inside else "[INST] ")
            if m["role"] == "system":
                out.append(f"<<SYS>>\n{c}\n<</SYS>>\n\n" if system else c + "\n")
            elif m["role"] == "user":
                out.append(c + " [/INST]")
            else:
                out.append(c + "</s>")
                inside = False
        return "".join(out)
    return fmt


def _tagged(open_: str, close: str, gen: str) -> Callable[[Messages, bool], str]:
    """role between open_ markers: `<|role|>\\ncontent` + close per message."""
    def fmt(msgs: Messages, add: bool) -> str:
        out = "".join(open_.format(role=m["role"]) + m["content"] + close for m in msgs)
        return out + (gen if add else "")
    return fmt


def monarch(msgs: Messages, add: bool) -> str:
    out = "".join(("" if i == 0 else "<s>") + f"{m['role']}\n{m['content']}</s>\n" for i, m in enumerate(msgs))
    return out + ("<s>assistant\n" if add else "")


def gemma(msgs: Messages, add: bool) -> str:
    out, system = [], ""
    for m in msgs:
        if m["role"] == "system":
            system += _trim(m["content"])
            continue
        role = "model" if m["role"] == "assistant" else m["role"]
        out.append(f"<start_of_turn>{role}\n")
        if system and role != "model":
            out.append(system + "\n\n")
            system = ""
        out.append(_trim(m["content"]) + "<end_of_turn>\n")
    return "".join(out) + ("<start_of_turn>model\n" if add else "")


def orion(msgs: Messages, add: bool) -> str:
    out, system = [], ""
    for m in msgs:
        if m["role"] == "system":
            system += m["content"]
        elif m["role"] == "user":
            out.append("Human: " + (system + "\n\n" if system else "") + m["content"] + "\n\nAssistant: </s>")
            system = ""
        else:
            out.append(m["content"] + "</s>")
    return "".join(out)


def openchat(msgs: Messages, add: bool) -> str:
    out = []
    for m in msgs:
        if m["role"] == "system":
            out.append(m["content"] + "<|end_of_turn|>")
        else:
            role = m["role"][:1].upper() + m["role"][1:]
            out.append(f"GPT4 Correct {role}: {m['content']}<|end_of_turn|>")
    return "".join(out) + ("GPT4 Correct Assistant:" if add else "")


def _vicuna(orca: bool) -> Callable[[Messages, bool], str]:
    def fmt(msgs: Messages, add: bool) -> str:
        out = []
        for m in msgs:
            if m["role"] == "system":
                out.append(f"SYSTEM: {m['content']}\n" if orca else m["content"] + "\n\n")
            elif m["role"] == "user":
                out.append(f"USER: {m['content']}\n")
            elif m["role"] == "assistant":
                out.append(f"ASSISTANT: {m['content']}</s>\n")
        return "".join(out) + ("ASSISTANT:" if add else "")
    return fmt


def deepseek(msgs: Messages, add: bool) -> str:
    out = []
    for m in msgs:
        if m["role"] == "system":
            out.append(m["content"])
        elif m["role"] == "user":
            out.append(f"### Instruction:\n{m['content']}\n")
        elif m["role"] == "assistant":
            out.append(f"### Response:\n{m['content']}\n<|EOT|>\n")
    return "".join(out) + ("### Response:\n" if add else "")


def deepseek2(msgs: Messages, add: bool) -> str:
    out = []
    for m in msgs:
        if m["role"] == "system":
            out.append(m["content"] + "\n\n")
        elif m["role"] == "user":
            out.append(f"User: {m['content']}\n\n")
        elif m["role"] == "assistant":
            out.append(f"Assistant: {m['content']}<｜end▁of▁sentence｜>")
    return "".join(out) + ("Assistant:" if add else "")


def deepseek3(msgs: Messages, add: bool) -> str:
    out = []
    for m in msgs:
        if m["role"] == "system":
            out.append(m["content"] + "\n\n")
        elif m["role"] == "user":
            out.append("<｜User｜>" + m["content"])
        elif m["role"] == "assistant":
            out.append("<｜Assistant｜>" + m["content"] + "<｜end▁of▁sentence｜>")
    return "".join(out) + ("<｜Assistant｜>" if add else "")


def command_r(msgs: Messages, add: bool) -> str:
    tags = {"system": "<|SYSTEM_TOKEN|>", "user": "<|USER_TOKEN|>", "assistant": "<|CHATBOT_TOKEN|>"}
    out = "".join(f"<|START_OF_TURN_TOKEN|>{tags[m['role']]}{_trim(m['content'])}<|END_OF_TURN_TOKEN|>"
                  for m in msgs if m["role"] in tags)
    return out + ("<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>" if add else "")


def llama3(msgs: Messages, add: bool) -> str:
    out = "".join(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{_trim(m['content'])}<|eot_id|>"
                  for m in msgs)
    return out + ("<|start_header_id|>assistant<|end_header_id|>\n\n" if add else "")


def chatglm3(msgs: Messages, add: bool) -> str:
    return "[gMASK]sop" + "".join(f"<|{m['role']}|>\n {m['content']}" for m in msgs) + ("<|assistant|>" if add else "")


def chatglm4(msgs: Messages, add: bool) -> str:
    return "[gMASK]<sop>" + "".join(f"<|{m['role']}|>\n{m['content']}" for m in msgs) + \
        ("<|assistant|>\n" if add else "")


def minicpm(msgs: Messages, add: bool) -> str:
    return "".join("<用户>" + _trim(m["content"]) + "<AI>" if m["role"] == "user" else _trim(m["content"])
                   for m in msgs)


def exaone3(msgs: Messages, add: bool) -> str:
    out = []
    for m in msgs:
        c = _trim(m["content"])
        if m["role"] == "system":
            out.append(f"[|system|]{c}[|endofturn|]\n")
        elif m["role"] == "user":
            out.append(f"[|user|]{c}\n")
        elif m["role"] == "assistant":
            out.append(f"[|assistant|]{c}[|endofturn|]\n")
    return "".join(out) + ("[|assistant|]" if add else "")


def granite(msgs: Messages, add: bool) -> str:
    out = []
    for m in msgs:
        out.append(f"<|start_of_role|>{m['role']}<|end_of_role|>")
        if m["role"] == "assistant_tool_call":
            out.append("<|tool_call|>")
        out.append(m["content"] + "<|end_of_text|>\n")
    return "".join(out) + ("<|start_of_role|>assistant<|end_of_role|>" if add else "")


BUILTIN: dict[str, Callable[[Messages, bool], str]] = {
    "chatml": chatml,
    "llama2": _llama2(False, False, False),
    "llama2-sys": _llama2(True, False, False),
    "llama2-sys-bos": _llama2(True, True, False),
    "llama2-sys-strip": _llama2(True, False, True),
    "mistral-v1": _mistral(" ", " ", False),
    "mistral-v3": _mistral("", " ", True),
    "mistral-v3-tekken": _mistral("", "", False),
    "mistral-v7": _mistral_v7(" "),
    "mistral-v7-tekken": _mistral_v7(""),
    "phi3": _tagged("<|{role}|>\n", "<|end|>\n", "<|assistant|>\n"),
    "phi4": _tagged("<|im_start|>{role}<|im_sep|>", "<|im_end|>", "<|im_start|>assistant<|im_sep|>"),
    "falcon3": _tagged("<|{role}|>\n", "\n", "<|assistant|>\n"),
    "zephyr": _tagged("<|{role}|>\n", "<|endoftext|>\n", "<|assistant|>\n"),
    "glmedge": _tagged("<|{role}|>\n", "", "<|assistant|>"),
    "monarch": monarch,
    "gemma": gemma,
    "orion": orion,
    "openchat": openchat,
    "vicuna": _vicuna(False),
    "vicuna-orca": _vicuna(True),
    "deepseek": deepseek,
    "deepseek2": deepseek2,
    "deepseek3": deepseek3,
    "command-r": command_r,
    "llama3": llama3,
    "chatglm3": chatglm3,
    "chatglm4": chatglm4,
    "minicpm": minicpm,
    "exaone3": exaone3,
    "granite": granite,
}


def detect_format(template: str | None) -> str | None:
    """The built-in format a model's Jinja template stands for, by the markers
    llama.cpp looks for (used without --jinja); None when none matches."""
    if not template:
        return None
    t = template

    def has(*parts: str) -> bool:
        return all(p in t for p in parts)

    if "<|im_start|>" in t:
        if "<|im_sep|>" in t:
            return "phi4"
        return None if "<end_of_utterance>" in t else "chatml"
    if t.startswith("mistral") or "[INST]" in t:
        if "[SYSTEM_PROMPT]" in t:
            return "mistral-v7"
        if has("' [INST] ' + system_message") or "[AVAILABLE_TOOLS]" in t:
            if " [INST]" in t:
                return "mistral-v1"
            return "mistral-v3-tekken" if '"[INST]"' in t else "mistral-v3"
        if "content.strip()" in t:
            return "llama2-sys-strip"
        if "bos_token + '[INST]" in t:
            return "llama2-sys-bos"
        return "llama2-sys" if "<<SYS>>" in t else "llama2"
    if has("<|assistant|>", "<|end|>"):
        return "phi3"
    if "[gMASK]<sop>" in t:
        return "chatglm4"
    if has("<|assistant|>", "<|user|>"):
        if "<|tool_declare|>" in t:
            return None
        return "falcon3" if "</s>" in t else "glmedge"
    if has("<|user|>", "<|endoftext|>"):
        return "zephyr"
    if "bos_token + message['role']" in t:
        return "monarch"
    if "<start_of_turn>" in t:
        return "gemma"
    if "'\\n\\nAssistant: ' + eos_token" in t:
        return "orion"
    if "GPT4 Correct " in t:
        return "openchat"
    if has("USER: ", "ASSISTANT: "):
        return "vicuna-orca" if "SYSTEM: " in t else "vicuna"
    if has("### Instruction:", "<|EOT|>"):
        return "deepseek"
    if has("<|START_OF_TURN_TOKEN|>", "<|USER_TOKEN|>"):
        return "command-r"
    if has("<|start_header_id|>", "<|end_header_id|>"):
        return "llama3"
    if "[gMASK]sop" in t:
        return "chatglm3"
    if "<用户>" in t:
        return "minicpm"
    if "'Assistant: ' + message['content'] + eos_token" in t:
        return "deepseek2"
    if has("<｜Assistant｜>", "<｜User｜>", "<｜end▁of▁sentence｜>"):
        return "deepseek3"
    if has("[|system|]", "[|assistant|]", "[|endofturn|]") and "[|tool|]" not in t:
        return "exaone3"
    if "<|start_of_role|>" in t and "<tool_call>" not in t and "<tools>" not in t:
        return "granite"
    return None
