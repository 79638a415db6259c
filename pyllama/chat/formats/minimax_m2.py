"""MiniMax-M2: reasoning the prompt opens (`<think>\n`), then
`<minimax:tool_call>\n<invoke name="NAME">\n<parameter name="KEY">VALUE</parameter>\n</invoke>\n...</minimax:tool_call>`,
all of a turn's calls in one block. Detected by its role markers `]~!b[` and `]~b]`."""

from __future__ import annotations

from .xml_calls import XmlCallsFormat, XmlForm, XmlLayout

FORM = XmlForm(scope_start="<minimax:tool_call>", scope_end="</minimax:tool_call>", call_start='<invoke name="',
               name_end='">', key_start='<parameter name="', key_end='">', value_start="",
               value_end="</parameter>", call_end="</invoke>", trim=False)
LAYOUT = XmlLayout(scope_start="<minimax:tool_call>\n", scope_end="</minimax:tool_call>", call_start='<invoke name="',
                   name_end='">\n', key_start='<parameter name="', key_end='">', value_end="</parameter>\n",
                   call_end="</invoke>\n", scope_per_call=False)


class MiniMaxM2(XmlCallsFormat):
    FORM, LAYOUT, TRIGGER = FORM, LAYOUT, "<minimax:tool_call>"
    name = "MiniMax-M2"
    opened = ("<think>\n",)
    close_thinking = "</think>\n\n"
    preserved = ("<think>", "</think>", "<minimax:tool_call>", "</minimax:tool_call>")

    @staticmethod
    def detect(src: str) -> bool:
        return "]~!b[" in src and "]~b]" in src
