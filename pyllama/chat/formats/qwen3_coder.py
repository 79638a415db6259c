"""Qwen3-Coder: `<tool_call>\n<function=NAME>\n<parameter=KEY>\nVALUE\n</parameter>\n</function>\n</tool_call>`,
one `<tool_call>` block per call (the parser also accepts several functions in one block).
Values are trimmed. Detected by the XML markers only its template has."""

from __future__ import annotations

from .xml_calls import XmlCallsFormat, XmlForm, XmlLayout

FORM = XmlForm(scope_start="<tool_call>", scope_end="</tool_call>", call_start="<function=", name_end=">",
               key_start="<parameter=", key_end=">", value_start="", value_end="</parameter>",
               call_end="</function>", trim=True)
LAYOUT = XmlLayout(scope_start="<tool_call>\n", scope_end="</tool_call>", call_start="<function=", name_end=">\n",
                   key_start="<parameter=", key_end=">\n", value_end="\n</parameter>\n", call_end="</function>\n",
                   scope_per_call=True)


class Qwen3Coder(XmlCallsFormat):
    FORM, LAYOUT, TRIGGER = FORM, LAYOUT, "<tool_call>"
    name = "Qwen3 Coder"
    preserved = ("<tool_call>", "</tool_call>", "<function=", "</function>", "<parameter=", "</parameter>")

    @staticmethod
    def detect(src: str) -> bool:
        return all(m in src for m in ("<tool_call>", "<function>", "<function=", "<parameters>", "<parameter="))
