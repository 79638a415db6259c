"""The built-in tools (--tools): read_file, file_glob_search, grep_search,
exec_shell_command, write_file, edit_file, get_info -- their definitions, limits and
answers as llama-server's (server-tools.cpp). A tool's invoke(params, stream) runs
on the request's greenlet; its file work goes to the tools' threads (fsio.py), its
commands through proc.run. An answer is a dict: {"plain_text_response": ...}, a
JSON result, or {"error": "..."} for a failure the model should see (HTTP 200)."""

from __future__ import annotations

import base64
import os
import time
from typing import Callable

import regex

from .edit import EditError, apply_edits
from .fsio import ALL, DIRS, FILES, LocalIO, read_local
from .globs import MAX_PATTERN, path_glob_match
from .params import ParamError, opt_bool, opt_int, opt_str, required_str
from .runtime import make_io
from .threads import in_thread

READ_FILE_MAX_SIZE = 16 * 1024                 # bytes of text (and of a file read without end_line)
READ_FILE_MAX_SIZE_BASE64 = 32 * 1024 * 1024   # bytes, x-resp-type: base64
FILE_SEARCH_MAX_RESULTS = 100
GREP_SEARCH_MAX_RESULTS = 100
GREP_TIME_BUDGET_S = 60                        # pyllama's: one search stops there (llama-server has none)
EXEC_MAX_OUTPUT_SIZE = 16 * 1024               # bytes
EXEC_MAX_TIMEOUT = 60                          # seconds
EXEC_DEFAULT_TIMEOUT = 10
GET_INFO_MAX_OUTPUT = 4096
GET_INFO_TIMEOUT = 5
MAX_EDITS = 1000                               # pyllama's bound on edits[] in one call


class Stream:
    """Where a streaming tool sends its output: push(text) for each piece; alive() is
    False once the client has gone."""

    def __init__(self, push: Callable[[str], None], alive: Callable[[], bool]):
        self.push, self.alive = push, alive


class Tool:
    name = ""
    display_name = ""
    permission_write = False
    support_stream = False
    uses_cwd = False
    type = "server"

    def definition(self) -> dict:
        raise NotImplementedError

    def invoke(self, params: dict, stream: Stream | None = None) -> dict | None:
        raise NotImplementedError

    def to_json(self) -> dict:
        return {"display_name": self.display_name, "tool": self.name, "type": self.type,
                "permissions": {"write": self.permission_write}, "uses_cwd": self.uses_cwd,
                "definition": self.definition()}


def _function(name: str, description: str, properties: dict, required: list[str] | None) -> dict:
    parameters: dict = {"type": "object", "properties": properties}
    if required is not None:
        parameters["required"] = required
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


def _prop(type_: str, description: str) -> dict:
    return {"type": type_, "description": description}


def _io(params: dict):
    return make_io(opt_str(params, "runtime", ""), opt_str(params, "cwd", ""))


def _lines(data: bytes) -> list[bytes]:
    """std::getline's lines: a final newline ends the last line, it does not start another."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


class ReadFile(Tool):
    name, display_name, uses_cwd = "read_file", "Read file", True

    def definition(self) -> dict:
        return _function(self.name, "Read the contents of a file. Optionally specify a 1-based line range. "
                                    "If append_loc is true, each line is prefixed with its line number "
                                    "(e.g. \"1\u2192...\").", {
            "path": _prop("string", "Path to the file"),
            "start_line": _prop("integer", "First line to read, 1-based (default: 1)"),
            "end_line": _prop("integer", "Last line to read, 1-based inclusive (default: end of file)"),
            "append_loc": _prop("boolean", "Prefix each line with its line number"),
        }, ["path"])

    def invoke(self, params: dict, stream: Stream | None = None) -> dict:
        path = required_str(params, "path")
        start_line = opt_int(params, "start_line", 1)
        end_line = opt_int(params, "end_line", -1)  # -1: to the end
        append_loc = opt_bool(params, "append_loc", False)
        as_base64 = opt_str(params, "resp_type", "") == "base64"  # from the x-resp-type header only
        io = _io(params)
        size = io.file_size(path)
        if size is None:
            return {"error": f"cannot stat file: {path}"}
        if as_base64:
            if size > READ_FILE_MAX_SIZE_BASE64:
                return {"error": f"file too large ({size} bytes, max {READ_FILE_MAX_SIZE_BASE64})"}
            content = io.read_file(path)
            if content is None:
                return {"error": f"failed to open file: {path}"}
            return {"base64": in_thread(lambda: base64.b64encode(content).decode("ascii")),
                    "size_bytes": len(content)}
        if size > READ_FILE_MAX_SIZE and end_line == -1:
            return {"error": f"file too large ({size} bytes, max {READ_FILE_MAX_SIZE}). Use start_line/end_line "
                             "to read a portion."}
        content = io.read_file(path)
        if content is None:
            return {"error": f"failed to open file: {path}"}
        return {"plain_text_response": in_thread(_line_range, content, start_line, end_line, append_loc)}


def _line_range(content: bytes, start_line: int, end_line: int, append_loc: bool) -> str:
    out = bytearray()
    for lineno, line in enumerate(_lines(content), 1):
        if lineno < start_line:
            continue
        if end_line != -1 and lineno > end_line:
            break
        piece = (f"{lineno}\u2192".encode() if append_loc else b"") + line + b"\n"
        if len(out) + len(piece) > READ_FILE_MAX_SIZE:
            out += b"[output truncated]"
            break
        out += piece
    return out.decode("utf-8", errors="replace")


class FileGlobSearch(Tool):
    name, display_name, uses_cwd = "file_glob_search", "File search", True

    def definition(self) -> dict:
        return _function(self.name,
            "Recursively search for files matching a glob pattern under a directory. "
            "Automatically skips files ignored by .gitignore (when the directory is inside a git repo) "
            "and common junk directories (.git, node_modules, build, dist, etc.) otherwise. "
            "A pattern with no '/' (e.g. \"*.cpp\") matches the file's basename at any depth. "
            "A pattern containing '/' matches the full relative path; unless already anchored with "
            "\"**/\" or a leading '/', it is automatically prefixed with \"**/\". "
            "Use type=\"dir\" or \"all\" to also list directories; directory entries are suffixed with '/' in the "
            "output. Note: directory listings do not apply .gitignore filtering.", {
                "path": _prop("string", "Base directory to search in"),
                "include": _prop("string", "Glob pattern for files to include (e.g. \"*.cpp\" or \"src/**/*.cpp\"). "
                                           "Default: **"),
                "exclude": _prop("string", "Glob pattern for files to exclude"),
                "type": _prop("string", "Entry type to return: \"file\" (default), \"dir\" or \"all\""),
                "max_depth": _prop("integer", "Maximum depth to descend into subdirectories (default: 0 = unlimited; "
                                              "1 = direct children only)"),
                "limit": _prop("integer", f"Maximum number of results to return, capped at {FILE_SEARCH_MAX_RESULTS} "
                                          f"(default {FILE_SEARCH_MAX_RESULTS})"),
            }, ["path"])

    def invoke(self, params: dict, stream: Stream | None = None) -> dict:
        io = _io(params)
        path = required_str(params, "path")
        base = io.resolve(path)
        include = opt_str(params, "include", "**")
        exclude = opt_str(params, "exclude", "")
        type_ = opt_str(params, "type", "file")
        max_depth = max(0, opt_int(params, "max_depth", 0))
        limit_req = opt_int(params, "limit", FILE_SEARCH_MAX_RESULTS)
        if limit_req < 1:
            return {"error": f"invalid limit: {limit_req} (expected 1 or more)"}
        limit = min(limit_req, FILE_SEARCH_MAX_RESULTS)
        kind = {"file": FILES, "dir": DIRS, "all": ALL}.get(type_)
        if kind is None:
            return {"error": f"invalid type: {type_} (expected \"file\", \"dir\" or \"all\")"}
        if len(include) > MAX_PATTERN or len(exclude) > MAX_PATTERN:
            return {"error": f"glob pattern too long (max {MAX_PATTERN} characters)"}
        listing = io.list_entries(base, max_depth, kind)
        if listing.err:
            return {"error": f"{listing.err}: {path}"}
        matches = in_thread(_filter, listing.entries, include, exclude)
        shown = matches[:limit]
        text = "".join(rel + ("/" if is_dir else "") + "\n" for rel, is_dir in shown)
        text += f"\n---\nTotal matches: {len(matches)}\n"
        if len(matches) > len(shown):
            text += (f"[{len(shown)} results limit reached ({len(matches)} total matches). Refine the glob pattern "
                     "to narrow the search.]\n")
        if listing.truncated:
            text += "[results truncated: time budget or unreadable directory]\n"
        # base is absolute, so a client (the web UI's picker) can join the relative entries to it
        return {"plain_text_response": text,
                "entries": [{"path": rel, "type": "dir" if is_dir else "file"} for rel, is_dir in shown],
                "base": base}


def _filter(entries: list[tuple[str, bool]], include: str, exclude: str) -> list[tuple[str, bool]]:
    return [(rel, d) for rel, d in entries
            if path_glob_match(include, rel) and not (exclude and path_glob_match(exclude, rel))]


class GrepSearch(Tool):
    name, display_name, uses_cwd = "grep_search", "Grep search", True

    def definition(self) -> dict:
        return _function(self.name,
            "Search for a pattern in files under a path. Returns matching lines with file paths "
            "(and, unless searching a single file, paths relative to the given directory). "
            "Automatically skips files ignored by .gitignore (when the directory is inside a git repo) "
            "and common junk directories (.git, node_modules, build, dist, etc.) otherwise. "
            "include/exclude: a pattern with no '/' matches the basename at any depth; a pattern "
            "containing '/' matches the full relative path (auto-anchored with \"**/\" unless already anchored).", {
                "path": _prop("string", "File or directory to search in"),
                "pattern": _prop("string", "Pattern to search for (regular expression unless literal is true)"),
                "include": _prop("string", "Glob pattern to filter files (default: **)"),
                "exclude": _prop("string", "Glob pattern to exclude files"),
                "return_line_numbers": _prop("boolean", "If true, include line numbers in results"),
                "literal": _prop("boolean", "Treat pattern as a literal string instead of a regular expression "
                                            "(default: false)"),
                "ignore_case": _prop("boolean", "Case-insensitive search (default: false)"),
                "context_lines": _prop("integer", "Number of lines of context to show before and after each match "
                                                  "(default: 0)"),
            }, ["path", "pattern"])

    def invoke(self, params: dict, stream: Stream | None = None) -> dict:
        path = required_str(params, "path")
        pattern = required_str(params, "pattern")
        include = opt_str(params, "include", "**")
        exclude = opt_str(params, "exclude", "")
        show_lineno = opt_bool(params, "return_line_numbers", False)
        literal = opt_bool(params, "literal", False)
        ignore_case = opt_bool(params, "ignore_case", False)
        ctx_lines = max(0, opt_int(params, "context_lines", 0))
        if len(pattern) > MAX_PATTERN:
            return {"error": f"invalid regex: pattern too long (max {MAX_PATTERN} characters)"}
        if len(include) > MAX_PATTERN or len(exclude) > MAX_PATTERN:
            return {"error": f"glob pattern too long (max {MAX_PATTERN} characters)"}
        try:
            # `regex` releases the GIL while matching and takes a timeout: a pattern that backtracks
            # exponentially stops at the time budget instead of freezing the server
            pattern_re = regex.compile(regex.escape(pattern) if literal else pattern,
                                       (regex.IGNORECASE if ignore_case else 0) | regex.VERSION0)
        except (regex.error, RecursionError, OverflowError, ValueError) as e:
            return {"error": f"invalid regex: {e}"}
        io = _io(params)
        abs_path = io.resolve(path)
        if io.is_regular_file(abs_path):
            files = [(abs_path, path)]
        elif io.is_directory(abs_path):
            listing = io.list_entries(abs_path, 0, FILES)
            if listing.err:
                return {"error": f"{listing.err}: {path}"}
            rels = in_thread(_filter, listing.entries, include, exclude)
            files = [(abs_path.rstrip("/") + "/" + rel, rel) for rel, _ in rels]
        else:
            return {"error": f"path does not exist: {path}"}
        scan = _Grep(pattern_re, ctx_lines, show_lineno or ctx_lines > 0)
        if isinstance(io, LocalIO):
            in_thread(scan.files, files, read_local)
        else:
            for fpath, display in files:
                if scan.done():
                    break
                content = io.read_file(fpath)
                if content is not None:
                    in_thread(scan.one, content, display)
        text = scan.out + f"\n---\nTotal matches: {scan.total}\n"
        if scan.limit_reached:
            text += (f"[{GREP_SEARCH_MAX_RESULTS} matches limit reached. Narrow the path/pattern/include to see "
                     "more.]\n")
        if scan.out_of_time:
            text += f"[search stopped: time budget of {GREP_TIME_BUDGET_S} s reached]\n"
        return {"plain_text_response": text}


class _Grep:
    def __init__(self, pattern: "regex.Pattern", ctx_lines: int, show_num: bool):
        self.regex, self.ctx_lines, self.show_num = pattern, ctx_lines, show_num
        self.parts: list[str] = []
        self.total = 0
        self.limit_reached = self.out_of_time = False
        self.deadline = time.monotonic() + GREP_TIME_BUDGET_S

    @property
    def out(self) -> str:
        return "".join(self.parts)

    def done(self) -> bool:
        if not self.limit_reached and time.monotonic() >= self.deadline:
            self.out_of_time = True
        return self.limit_reached or self.out_of_time

    def files(self, files: list[tuple[str, str]], read) -> None:
        for fpath, display in files:
            if self.done():
                return
            content = read(fpath)
            if content is not None:
                self.one(content, display)

    def one(self, content: bytes, display: str) -> None:
        lines = [ln.decode("utf-8", errors="replace") for ln in _lines(content)]
        search, ctx = self.regex.search, self.ctx_lines
        for i, line in enumerate(lines):
            if self.total >= GREP_SEARCH_MAX_RESULTS:
                self.limit_reached = True
                return
            try:
                found = search(line, concurrent=True, timeout=max(0.001, self.deadline - time.monotonic()))
            except TimeoutError:
                self.out_of_time = True
                return
            if not found:
                continue
            lo, hi = (max(0, i - ctx), min(len(lines) - 1, i + ctx)) if ctx > 0 else (i, i)
            for j in range(lo, hi + 1):
                sep = ":" if j == i else "-"
                num = f"{j + 1}{sep}" if self.show_num else ""
                self.parts.append(f"{display}{sep}{num}{lines[j]}\n")
            if ctx > 0:
                self.parts.append("--\n")
            self.total += 1


class ExecShellCommand(Tool):
    name, display_name, uses_cwd = "exec_shell_command", "Execute shell command", True
    permission_write = support_stream = True

    def definition(self) -> dict:
        return _function(self.name, "Execute a shell command and return its output (stdout and stderr combined).", {
            "command": _prop("string", "Shell command to execute"),
            "timeout": _prop("integer", f"Timeout in seconds (default 10, max {EXEC_MAX_TIMEOUT})"),
            "max_output_size": _prop("integer", f"Maximum output size in bytes (default {EXEC_MAX_OUTPUT_SIZE})"),
        }, ["command"])

    def invoke(self, params: dict, stream: Stream | None = None) -> dict | None:
        command = required_str(params, "command")
        timeout = min(opt_int(params, "timeout", EXEC_DEFAULT_TIMEOUT), EXEC_MAX_TIMEOUT)
        max_output = opt_int(params, "max_output_size", EXEC_MAX_OUTPUT_SIZE)
        if max_output < 0:  # llama-server reads it as a size_t: a negative one is huge, then capped
            max_output = EXEC_MAX_OUTPUT_SIZE
        max_output = min(max_output, EXEC_MAX_OUTPUT_SIZE)
        io = _io(params)
        args = ["sh", "-c", command]
        if stream is not None:
            def on_chunk(text: str) -> bool:
                if text:
                    stream.push(text)
                return stream.alive()
            res = io.run(args, max_output, max(timeout, 0), on_chunk)
            if not stream.alive():
                return None
            stream.push(_exit_tail(res))
            return None
        res = io.run(args, max_output, max(timeout, 0))
        return {"plain_text_response": res.output + _exit_tail(res)}


def _exit_tail(res) -> str:
    return f"\n[exit code: {res.exit_code}]" + (" [exit due to timed out]" if res.timed_out else "")


class WriteFile(Tool):
    name, display_name, uses_cwd = "write_file", "Write file", True
    permission_write = True

    def definition(self) -> dict:
        return _function(self.name, "Write content to a file, creating it (including parent directories) if it does "
                                    "not exist. May use with edit_file for more complex edits.", {
            "path": _prop("string", "Path of the file to write"),
            "content": _prop("string", "Content to write"),
        }, ["path", "content"])

    def invoke(self, params: dict, stream: Stream | None = None) -> dict:
        path = required_str(params, "path")
        content = required_str(params, "content").encode("utf-8", errors="surrogatepass")
        io = _io(params)
        if not io.write_file(path, content):
            return {"error": f"failed to write file: {path}"}
        return {"result": "file written successfully", "path": path, "bytes": len(content)}


class EditFile(Tool):
    name, display_name, uses_cwd = "edit_file", "Edit file", True
    permission_write = True

    def definition(self) -> dict:
        return _function(self.name,
            "Edit a file using exact text replacement. Each edits[].old_text must be unique in the file "
            "and is matched against the original content, not incrementally. Merge nearby changes into "
            "one edit instead of overlapping edits. Use write_file to replace the whole file.", {
                "path": _prop("string", "Path to the file to edit"),
                "edits": {"type": "array", "description": "One or more exact text replacements to apply",
                          "items": {"type": "object", "properties": {
                              "old_text": _prop("string", "Exact text to find; must be unique in the file and must "
                                                          "not overlap with other edits"),
                              "new_text": _prop("string", "Text to replace old_text with"),
                          }, "required": ["old_text", "new_text"]}},
            }, ["path", "edits"])

    def invoke(self, params: dict, stream: Stream | None = None) -> dict:
        path = required_str(params, "path")
        if "edits" not in params:
            raise ParamError("key 'edits' not found")
        edits_json = params["edits"]
        if not isinstance(edits_json, list) or not edits_json:
            return {"error": "\"edits\" must be a non-empty array"}
        if len(edits_json) > MAX_EDITS:
            return {"error": f"too many edits ({len(edits_json)}, max {MAX_EDITS})"}
        edits = []
        for e in edits_json:
            if not isinstance(e, dict):
                raise ParamError(f"edits[{len(edits)}] must be an object")
            old, new = required_str(e, "old_text"), required_str(e, "new_text")
            if not old:
                return {"error": f"edits[{len(edits)}].old_text must not be empty"}
            edits.append((old, new))
        io = _io(params)
        original = io.read_file(path)
        if original is None:
            return {"error": f"failed to open file: {path}"}
        text = original.decode("utf-8", errors="surrogateescape")
        try:
            new_text, n = in_thread(apply_edits, text, edits, path)
        except EditError as e:
            return {"error": str(e)}
        if not io.write_file(path, new_text.encode("utf-8", errors="surrogateescape")):
            return {"error": f"failed to write file: {path}"}
        return {"result": "file edited successfully", "path": path, "edits_applied": n}


class GetInfo(Tool):
    name, display_name, uses_cwd = "get_info", "Get Runtime Info", True

    def definition(self) -> dict:
        return _function(self.name, "Returns runtime info: the OS name/version and the current working directory",
                         {}, None)

    def invoke(self, params: dict, stream: Stream | None = None) -> dict:
        io = _io(params)
        res = io.run(["uname", "-a"], GET_INFO_MAX_OUTPUT, GET_INFO_TIMEOUT)
        os_info = res.output.strip() if res.exit_code == 0 and not res.timed_out else "unknown"
        cwd = opt_str(params, "cwd", "")
        if not cwd:
            if not opt_str(params, "runtime", ""):
                try:
                    cwd = os.getcwd()
                except OSError:
                    cwd = ""
            else:
                pwd = io.run(["pwd"], GET_INFO_MAX_OUTPUT, GET_INFO_TIMEOUT)
                cwd = pwd.output.strip() if pwd.exit_code == 0 and not pwd.timed_out else "unknown"
        return {"os": os_info, "cwd": cwd}


# kept minimal, as llama-server's list: file and shell primitives only (more belongs in MCP servers)
BUILTIN = (ReadFile, FileGlobSearch, GrepSearch, ExecShellCommand, WriteFile, EditFile, GetInfo)
NAMES = tuple(t.name for t in BUILTIN)
