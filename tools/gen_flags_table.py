"""Write pyllama-server's flag table into README.md, between the FLAGS markers, from
the flag declarations (server/config.py) and the exit-action flags (server/cli.py).

    python tools/gen_flags_table.py           # rewrite README.md
    python tools/gen_flags_table.py --check   # exit 1 if README.md is not current

tests/server/test_flags_table.py runs the check."""

from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- FLAGS_START -->", "<!-- FLAGS_END -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br/>")


def table() -> str:
    """The markdown between the markers: every flag with its names, value, meaning,
    default, variable, and (for flags accepted without effect) why."""
    from pyllama.server.cli import ACTIONS
    from pyllama.server.config import ServerConfig
    from pyllama.server.flags import declared, default_text, metavar

    lines = [
        "Generated from the flag declarations by `tools/gen_flags_table.py`; do not edit by hand.",
        "",
        "| Argument | Explanation | Env |",
        "| -------- | ----------- | --- |",
    ]
    for names, text in ACTIONS:
        lines.append(f"| `{', '.join(names)}` | {_cell(text)} | |")
    honoured, ignored = [], []
    for _, typ, default, f in declared(ServerConfig):
        arg = ", ".join(f.all_names)
        if typ is not bool:
            arg += " " + " ".join([metavar(typ, f)] if f.nargs == 1 else metavar(typ, f).split())
        text = f.help
        if f.choices:
            text += " (" + " | ".join(map(str, f.choices)) + ")"
        text += f" (default: {default_text(default, f, typ)})"
        if f.repeat:
            text += " (may be repeated)"
        if f.noeffect:
            text = f"**accepted, no effect**: {f.noeffect}. " + text
        env = f"`{f.env}`" if f.env else ""
        row = f"| `{_cell(arg)}` | {_cell(text)} | {env} |"
        (ignored if f.noeffect else honoured).append(row)
    lines += honoured + ignored
    return "\n".join(lines)


def render(readme: str) -> str:
    i, j = readme.index(START) + len(START), readme.index(END)
    return readme[:i] + "\n" + table() + "\n" + readme[j:]


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    new = render(text)
    if "--check" in argv:
        if new != text:
            print("README.md's flag table is not current: run python tools/gen_flags_table.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
