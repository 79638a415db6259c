"""GLM 4.5 / 4.6: `<think>...</think>` then
`<tool_call>NAME\n<arg_key>KEY</arg_key>\n<arg_value>VALUE</arg_value>\n</tool_call>` per call.
Detected by `[gMASK]<sop>` with the `<arg_key>` / `<arg_value>` tags."""

from __future__ import annotations

from .xml_calls import XmlCallsFormat, XmlForm, XmlLayout

FORM = XmlForm(scope_start="", scope_end="", call_start="<tool_call>", name_end="", key_start="<arg_key>",
               key_end="</arg_key>", value_start="<arg_value>", value_end="</arg_value>", call_end="</tool_call>",
               trim=False)
LAYOUT = XmlLayout(scope_start="", scope_end="", call_start="<tool_call>", name_end="\n", key_start="<arg_key>",
                   key_end="</arg_key>\n<arg_value>", value_end="</arg_value>\n", call_end="</tool_call>",
                   scope_per_call=False)


class Glm45(XmlCallsFormat):
    FORM, LAYOUT, TRIGGER = FORM, LAYOUT, "<tool_call>"
    name = "GLM 4.5"
    opened = ("<think>",)
    needs_no_schema = True
    stops = ("<|user|>", "<|observation|>")
    preserved = ("<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>",
                 "<|assistant|>", "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>",
                 "<|end_of_video|>", "<|begin_of_audio|>", "<|end_of_audio|>", "<|begin_of_transcription|>",
                 "<|end_of_transcription|>", "<|code_prefix|>", "<|code_middle|>", "<|code_suffix|>", "/nothink",
                 "<think>", "</think>", "<tool_call>", "</tool_call>", "<arg_key>", "</arg_key>", "<arg_value>",
                 "</arg_value>")

    @staticmethod
    def detect(src: str) -> bool:
        return "[gMASK]<sop>" in src and "<arg_key>" in src and "<arg_value>" in src
