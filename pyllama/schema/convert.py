"""JSON Schema -> GBNF. The grammar's language follows llama.cpp's converter
(same whitespace, property order and primitives, so llama-server users get the
same shapes) and is tightened where that one is loose: number bounds, patterns
that need JSON escapes, required properties missing from `properties`, allOf
over alternatives and enum values of the wrong type. Whatever cannot be made
exact or makes no sense raises SchemaError, which the server turns into a 400."""

from __future__ import annotations

import itertools
import json
import re
from decimal import Decimal
from math import ceil, floor, isfinite
from urllib.parse import unquote

from ..errors import InvalidRequest
from .pattern import PatternError, pattern_to_gbnf
from .primitives import FORMATS, PRIMITIVES, RESERVED, SPACE, literal
from .ranges import integer_grammar, number_grammar

MAX_DEPTH = 128          # nesting of the schema document
MAX_REPEAT = 1000        # larger maxLength / maxItems generate at most this many
MAX_ALTERNATIVES = 64    # allOf distributed over anyOf branches
MAX_WORK = 100_000       # schema nodes visited per conversion (a few hundred ms at most)
MAX_GRAMMAR_BYTES = 4 << 20  # the GBNF parser's own limit on its source
SEP = '"," space'
TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
_RULE_CHARS = re.compile(r"[^a-zA-Z0-9-]+")


class SchemaError(InvalidRequest):
    """A JSON Schema that cannot become a grammar (or costs too much to convert)."""


def _dump(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _is_type(value, t: str) -> bool:
    if t == "null":
        return value is None
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or \
            (isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"string": str, "array": list, "object": dict}[t])


def _count(s: dict, key: str, default):
    v = s.get(key, default)
    if v is default:
        return v
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise SchemaError(f"{key} must be a non-negative integer")
    return v


def _quantifier(lo: int, hi: int | None) -> str:
    if (lo, hi) == (0, 1):
        return "?"
    if hi is None:
        return {0: "*", 1: "+"}.get(lo, f"{{{lo},}}")
    return f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"


def repeat(item: str, lo: int, hi: int | None, sep: str = "") -> str:
    """item lo..hi times (hi None: unbounded), with sep between items."""
    if lo > MAX_REPEAT:
        raise SchemaError(f"at least {lo} repetitions are required; at most {MAX_REPEAT} are supported")
    if hi is not None and hi > MAX_REPEAT:
        hi = MAX_REPEAT
    if hi == 0:
        return ""
    if not sep:
        return f"{item}{_quantifier(lo, hi)}" if (lo, hi) != (1, 1) else item
    if hi == 1:
        return item if lo == 1 else f"{item}?"
    rest = f"( {sep} {item} ){_quantifier(max(lo - 1, 0), None if hi is None else hi - 1)}"
    return f"{item} {rest}" if lo > 0 else f"( {item} {rest} )?"


class Converter:
    def __init__(self, root):
        self.root = root
        self.rules: dict[str, str | None] = {"space": SPACE}
        self.reserved: set[str] = set()
        self.refs: dict[str, str] = {}
        self.depth = 0
        self.flat_refs: dict = {}  # $ref -> its flattened allOf parts
        self.work = 0  # schema nodes visited or flattened: a schema that fans out exponentially stops early

    def spend(self, n: int = 1) -> None:
        self.work += n
        if self.work > MAX_WORK:
            raise SchemaError(f"schema too complex to convert (more than {MAX_WORK} steps; "
                              "allOf or $ref fanning out?)")

    # -- rules -------------------------------------------------------------------------------
    def add_rule(self, name: str, body: str) -> str:
        name = _RULE_CHARS.sub("-", name) or "rule"
        if name in self.reserved:
            self.reserved.discard(name)
            self.rules[name] = body
            return name
        if self.rules.get(name, body) == body:
            self.rules[name] = body
            return name
        i = 0
        while self.rules.get(f"{name}{i}", body) != body:
            i += 1
        self.rules[f"{name}{i}"] = body
        return f"{name}{i}"

    def primitive(self, name: str) -> str:
        body, deps = PRIMITIVES[name]
        self.rules[name] = body
        for dep in deps:
            if dep not in self.rules:
                self.primitive(dep)
        return name

    def grammar(self) -> str:
        return "".join(f"{k} ::= {v}\n" for k, v in sorted(self.rules.items()))

    # -- references ------------------------------------------------------------------------------
    def resolve(self, ref) -> object:
        if not isinstance(ref, str):
            raise SchemaError("$ref must be a string")
        if not ref.startswith("#"):
            raise SchemaError(f"unsupported $ref {ref}: only references into the same document (#/...) are supported")
        target = self.root
        if ref in ("#", "#/"):
            return target
        if not ref.startswith("#/"):
            raise SchemaError(f"unsupported $ref {ref}: only JSON pointers (#/...) are supported")
        for raw in ref[2:].split("/"):
            key = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and key in target:
                target = target[key]
            elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
                target = target[int(key)]
            else:
                raise SchemaError(f"cannot resolve $ref {ref}: {key!r} not found")
        return target

    def ref_rule(self, ref: str) -> str:
        if ref in self.refs:
            return self.refs[ref]
        target = self.resolve(ref)
        base = _RULE_CHARS.sub("-", "ref" + ref[1:])
        name, i = base, 0
        while name in self.rules or name in self.reserved:
            name, i = f"{base}{i}", i + 1
        self.reserved.add(name)
        self.rules[name] = None
        self.refs[ref] = name
        inner = self.visit(target, name)
        if name in self.reserved:  # the target became another rule (a primitive): alias it
            self.reserved.discard(name)
            self.rules[name] = inner
        return name

    # -- visiting ------------------------------------------------------------------------------
    def visit(self, schema, name: str) -> str:
        self.spend()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SchemaError(f"schema nested too deeply (more than {MAX_DEPTH} levels)")
        try:
            return self._visit(schema, name)
        finally:
            self.depth -= 1

    def _visit(self, s, name: str) -> str:
        rule_name = name + "-" if name in RESERVED else (name or "root")
        sub = name + "-" if name else ""
        if s is True:
            s = {}
        if s is False:
            raise SchemaError("the schema false matches nothing")
        if not isinstance(s, dict):
            raise SchemaError("a schema must be an object or a boolean")
        if s.get("nullable") is True and s.get("type") != "null":
            inner = self.visit({k: v for k, v in s.items() if k != "nullable"}, sub + "nonnull")
            return self.add_rule(rule_name, f"{inner} | {self.primitive('null')}")
        if "$ref" in s:
            return self.add_rule(rule_name, self.ref_rule(s["$ref"]))
        for key in ("anyOf", "oneOf"):
            if key in s:
                return self.union(s, key, name, rule_name)
        if "allOf" in s:
            merged = self.merge_all_of(s)
            return self.visit(merged, name)
        if "const" in s:
            return self.add_rule(rule_name, literal(_dump(s["const"])))
        types = s.get("type")
        if isinstance(types, list):
            if not types or not all(isinstance(t, str) for t in types):
                raise SchemaError("type must be a string or a non-empty array of strings")
            uniq = list(dict.fromkeys(types))
            if len(uniq) > 1:
                alts = [self.visit({**s, "type": t}, f"{sub}{t}") for t in uniq]
                return self.add_rule(rule_name, " | ".join(alts))
            types = uniq[0]
        if types is not None and not isinstance(types, str):
            raise SchemaError("type must be a string or a non-empty array of strings")
        if types is not None and types not in TYPES:
            raise SchemaError(f"unrecognized type {types}")
        if "enum" in s:
            values = s["enum"]
            if not isinstance(values, list) or not values:
                raise SchemaError("enum must be a non-empty array")
            if types:
                values = [v for v in values if _is_type(v, types)]
                if not values:
                    raise SchemaError(f"no enum value is of type {types}")
            return self.add_rule(rule_name, "(" + " | ".join(literal(_dump(v)) for v in values) + ")")
        t = types or self.infer_type(s)
        if t is None:
            return self.add_rule(rule_name, self.primitive("value"))
        return getattr(self, "visit_" + t)(s, name, rule_name, sub)

    @staticmethod
    def infer_type(s: dict) -> str | None:
        if "properties" in s or "required" in s or ("additionalProperties" in s and s["additionalProperties"] is not True):
            return "object"
        if "items" in s or "prefixItems" in s or "minItems" in s or "maxItems" in s:
            return "array"
        if any(k in s for k in ("pattern", "minLength", "maxLength", "format")):
            return "string"
        if any(k in s for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
            return "number"
        return None

    def union(self, s: dict, key: str, name: str, rule_name: str) -> str:
        alts = s[key]
        if not isinstance(alts, list) or not alts:
            raise SchemaError(f"{key} must be a non-empty array of schemas")
        siblings = {k: v for k, v in s.items() if k not in ("anyOf", "oneOf", "title", "description", "$defs",
                                                             "definitions", "$schema", "$id", "examples")}
        rules = []
        for i, alt in enumerate(alts):
            if siblings:
                alt = {"allOf": [siblings, alt]}
            rules.append(self.visit(alt, f"{name}{'-' if name else 'alternative-'}{i}"))
        return self.add_rule(rule_name, " | ".join(rules))

    # -- allOf ---------------------------------------------------------------------------------
    def _flatten(self, s, out: list, depth: int = 0) -> None:
        self.spend()
        if depth > 32:
            raise SchemaError("allOf / $ref chain too deep")
        if s is True:
            return
        if s is False:
            raise SchemaError("allOf includes the schema false, which matches nothing")
        if not isinstance(s, dict):
            raise SchemaError("a schema must be an object or a boolean")
        rest = {k: v for k, v in s.items() if k not in ("allOf", "$ref")}
        if "$ref" in s:
            ref = s["$ref"]
            key = ref if isinstance(ref, str) else None
            if key not in self.flat_refs:  # memoised: a ref used twice is flattened once
                parts: list = []
                self._flatten(self.resolve(ref), parts, depth + 1)
                self.flat_refs[key] = parts
            self.spend(len(self.flat_refs[key]))
            out.extend(dict(p) for p in self.flat_refs[key])
        if "allOf" in s:
            if not isinstance(s["allOf"], list) or not s["allOf"]:
                raise SchemaError("allOf must be a non-empty array of schemas")
            for part in s["allOf"]:
                self._flatten(part, out, depth + 1)
        out.append(rest)

    def merge_all_of(self, s: dict) -> dict:
        parts: list[dict] = []
        self._flatten(s, parts)
        choices = []
        for p in parts:
            for key in ("anyOf", "oneOf"):
                if key in p:
                    alts = p.pop(key)
                    if not isinstance(alts, list) or not alts:
                        raise SchemaError(f"{key} must be a non-empty array of schemas")
                    flat = []
                    for a in alts:
                        f: list[dict] = []
                        self._flatten(a, f)
                        flat.append(f)
                    choices.append(flat)
        combos = 1
        for c in choices:
            combos *= len(c)
        if combos > MAX_ALTERNATIVES:
            raise SchemaError(f"allOf over anyOf/oneOf expands to {combos} alternatives (at most {MAX_ALTERNATIVES})")
        self.spend(combos * max(1, len(parts)))
        if not choices:
            return _merge(parts)
        return {"anyOf": [_merge(parts + [x for f in pick for x in f]) for pick in itertools.product(*choices)]}

    # -- types ---------------------------------------------------------------------------------
    def visit_null(self, s, name, rule_name, sub):
        return self.add_rule(rule_name, self.primitive("null"))

    def visit_boolean(self, s, name, rule_name, sub):
        return self.add_rule(rule_name, self.primitive("boolean"))

    def visit_string(self, s, name, rule_name, sub):
        if "pattern" in s:
            if not isinstance(s["pattern"], str):
                raise SchemaError("pattern must be a string")
            try:
                return self.add_rule(rule_name, pattern_to_gbnf(s["pattern"]))
            except PatternError as e:
                raise SchemaError(f"pattern {s['pattern']!r}: {e}") from None
        fmt = s.get("format")
        if fmt is not None and not isinstance(fmt, str):
            raise SchemaError("format must be a string")
        if fmt in FORMATS:
            return self.add_rule(rule_name, self.primitive(FORMATS[fmt]))
        lo, hi = _count(s, "minLength", 0), _count(s, "maxLength", None)
        if hi is not None and lo > hi:
            raise SchemaError("minLength is greater than maxLength")
        if lo == 0 and hi is None:
            return self.add_rule(rule_name, self.primitive("string"))
        chars = repeat(self.primitive("char"), lo, hi)
        return self.add_rule(rule_name, f'"\\"" {chars} "\\""' if chars else '"\\"" "\\""')

    def visit_integer(self, s, name, rule_name, sub):
        lo, lo_incl, hi, hi_incl = _bounds(s)
        lo_i = None if lo is None else (ceil(lo) if lo_incl else floor(lo) + 1)
        hi_i = None if hi is None else (floor(hi) if hi_incl else ceil(hi) - 1)
        if lo_i is None and hi_i is None:
            return self.add_rule(rule_name, self.primitive("integer"))
        if lo_i is not None and hi_i is not None and lo_i > hi_i:
            raise SchemaError("no integer lies within minimum / maximum")
        return self.add_rule(rule_name, f"({integer_grammar(lo_i, hi_i)})")

    def visit_number(self, s, name, rule_name, sub):
        lo, lo_incl, hi, hi_incl = _bounds(s)
        if lo is None and hi is None:
            return self.add_rule(rule_name, self.primitive("number"))
        try:
            return self.add_rule(rule_name, f"({number_grammar(lo, lo_incl, hi, hi_incl)})")
        except ValueError:
            raise SchemaError("no number lies within minimum / maximum") from None

    def visit_array(self, s, name, rule_name, sub):
        items, prefix = s.get("items"), s.get("prefixItems")
        if isinstance(items, list):  # drafts 4-7: items as a tuple, then additionalItems
            prefix, items = items, s.get("additionalItems")
        if prefix is not None and not isinstance(prefix, list):
            raise SchemaError("prefixItems must be an array of schemas")
        if items is not None and not isinstance(items, (bool, dict)):
            raise SchemaError("items must be a schema")
        lo, hi = _count(s, "minItems", 0), _count(s, "maxItems", None)
        if hi is not None and lo > hi:
            raise SchemaError("minItems is greater than maxItems")
        n = min(len(prefix or ()), MAX_REPEAT if hi is None else hi)
        if items is False:
            more_max = 0
        elif hi is not None:
            more_max = hi - n
        else:  # after a tuple, further items only when asked for (or allowed by an explicit schema)
            more_max = max(0, lo - n) if (n and items is None) else None
        need = max(0, lo - n)
        if more_max is not None and need > more_max:
            raise SchemaError("minItems asks for more items than the schema allows")
        item = self.visit(items, f"{sub}item") if isinstance(items, dict) and items else self.primitive("value")
        if not n:
            if items in (None, True, {}) and lo == 0 and hi is None:
                return self.add_rule(rule_name, self.primitive("array"))
            inner = repeat(item, lo, more_max, SEP)
            return self.add_rule(rule_name, f'"[" space {inner} space "]"' if inner else '"[" space "]"')
        fixed = ' "," space '.join(self.visit(p, f"{sub}tuple-{i}") for i, p in enumerate(prefix[:n]))
        more = "" if more_max == 0 else (f"{SEP} {item}" if (need, more_max) == (1, 1) else
                                         f"( {SEP} {item} ){_quantifier(need, more_max)}")
        return self.add_rule(rule_name, f'"[" space {fixed}{" " + more if more else ""} space "]"')

    def visit_object(self, s, name, rule_name, sub):
        props = s.get("properties", {})
        if not isinstance(props, dict):
            raise SchemaError("properties must be an object")
        required = s.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise SchemaError("required must be an array of strings")
        extra = s.get("additionalProperties", None)
        if extra is None:
            extra = not props  # llama.cpp: declared properties close the object unless told otherwise
        if not isinstance(extra, (bool, dict)):
            raise SchemaError("additionalProperties must be a boolean or a schema")
        if not props and extra is True and not required and not ({"minProperties", "maxProperties"} & s.keys()):
            return self.add_rule(rule_name, self.primitive("object"))
        kv: dict[str, str] = {}
        for key in list(props) + [r for r in required if r not in props]:
            if key in props:
                value = self.visit(props[key], sub + key)
            elif extra is False:
                raise SchemaError(f"required property {key!r} is not allowed by additionalProperties: false")
            else:
                value = self.visit(extra, sub + key) if isinstance(extra, dict) else self.primitive("value")
            kv[key] = self.add_rule(f"{sub}{key}-kv", f'{literal(_dump(key))} space ":" space {value}')
        # min/maxProperties: promote the first optional members, drop the last ones, bound the extra ones
        min_p, max_p = _count(s, "minProperties", 0), _count(s, "maxProperties", None)
        if max_p is not None and min_p > max_p:  # else the bounds below go negative: {0,-1} in the GBNF
            raise SchemaError("minProperties is greater than maxProperties")
        n_req = sum(1 for k in kv if k in required)
        if max_p is not None and n_req > max_p:
            raise SchemaError("more properties are required than maxProperties allows")
        promoted = [k for k in kv if k not in required][:max(0, min_p - n_req)]
        req = [k for k in kv if k in required or k in promoted]
        opt = [k for k in kv if k not in req]
        if max_p is not None:
            opt = opt[:max(0, max_p - len(req))]
        extra_lo = max(0, min_p - len(req))
        extra_hi = None if max_p is None else max_p - len(req) - len(opt)
        if extra_lo and (extra is False or extra_hi is not None and extra_hi < extra_lo):
            raise SchemaError("minProperties cannot be met with the properties allowed")
        extra_kv = None
        if extra is not False and extra_hi != 0:
            value = self.visit(extra, f"{sub}additional-value") if isinstance(extra, dict) and extra else \
                self.primitive("value")
            key_rule = self.add_rule(f"{sub}additional-k", self.not_strings(list(kv))) if kv else \
                self.primitive("string")
            extra_kv = self.add_rule(f"{sub}additional-kv", f'{key_rule} ":" space {value}')
        body = ' "," space '.join(kv[k] for k in req)
        if extra_lo:  # no optional members are left: the extra ones make up the count
            first = 0 if req else 1
            top = None if extra_hi is None else extra_hi - first
            more = f'( "," space {extra_kv} ){_quantifier(extra_lo - first, top)}'
            body = f"{body} {more}" if req else f"{extra_kv} {more}"
            return self.add_rule(rule_name, f'"{{" space {body} space "}}"')
        # optional members follow in order, any subset; additional ones come last
        extra_q = _quantifier(0, extra_hi)
        chain = [(kv[k], "?", k) for k in opt] + ([(extra_kv, extra_q, "additional")] if extra_kv else [])
        rests: list[str] = [""] * (len(chain) + 1)
        for i in range(len(chain) - 1, -1, -1):
            rule, q, key = chain[i]
            piece = f'( "," space {rule} ){q}' + (f" {rests[i + 1]}" if rests[i + 1] else "")
            rests[i] = self.add_rule(f"{sub}{key}-rest", piece)
        if chain and req:
            body += " " + rests[0]
        elif chain:
            firsts = []
            for i, (rule, q, key) in enumerate(chain):
                first = rule
                if key == "additional" and extra_hi != 1:
                    first += f' ( "," space {rule} ){_quantifier(0, None if extra_hi is None else extra_hi - 1)}'
                firsts.append(first + (f" {rests[i + 1]}" if rests[i + 1] else ""))
            body = "( " + " | ".join(firsts) + " )?"
        return self.add_rule(rule_name, f'"{{" space {body} space "}}"' if body else '"{" space "}"')

    def not_strings(self, names: list[str]) -> str:
        """A JSON string that is none of the names (compared as decoded text)."""
        char = self.primitive("char")
        trie: dict = {}
        for n in names:
            node = trie
            for ch in n:
                node = node.setdefault(ch, {})
            node[None] = True

        def unit(ch: str) -> str:
            return literal(_dump(ch)[1:-1])

        def other(node) -> str:
            kids = [c for c in node if c is not None]
            excl = "".join(f"\\x{ord(c):02X}" if ord(c) < 0x100 else f"\\u{ord(c):04X}" if ord(c) < 0x10000
                           else f"\\U{ord(c):08X}" for c in kids)
            shorts = [e for e, c in (('"\\\\\\""', '"'), ('"\\\\\\\\"', "\\"), ('"\\\\n"', "\n"), ('"\\\\t"', "\t"),
                                     ('"\\\\r"', "\r"), ('"\\\\b"', "\b"), ('"\\\\f"', "\f")) if c not in kids]
            return "( " + " | ".join([f'[^"\\\\\\x7F\\x00-\\x1F{excl}]'] + shorts) + f" ) {char}*"

        def walk(node) -> str:
            alts = [f"{unit(c)} ({walk(child)})" for c, child in node.items() if c is not None]
            alts.append(other(node))
            body = " | ".join(alts)
            return body if None in node else f"( {body} )?"

        return f'"\\"" {walk(trie)} "\\""'


def _merge(parts: list[dict]) -> dict:
    out: dict = {}
    for d in parts:
        for k, v in d.items():
            if k not in out:
                out[k] = v
                continue
            a = out[k]
            if k == "properties" and isinstance(a, dict) and isinstance(v, dict):
                merged = dict(a)
                for p, ps in v.items():
                    merged[p] = {"allOf": [merged[p], ps]} if p in merged else ps
                out[k] = merged
            elif k == "required" and isinstance(a, list) and isinstance(v, list):
                out[k] = a + [x for x in v if x not in a]
            elif k in ("minimum", "exclusiveMinimum", "minLength", "minItems") and _num(a) and _num(v):
                out[k] = max(a, v)
            elif k in ("maximum", "exclusiveMaximum", "maxLength", "maxItems") and _num(a) and _num(v):
                out[k] = min(a, v)
            elif k == "type":
                ta, tv = (a if isinstance(a, list) else [a]), (v if isinstance(v, list) else [v])
                both = [t for t in ta if t in tv] + [t for t in ta if t == "integer" and "number" in tv and t not in tv] \
                    + [t for t in tv if t == "integer" and "number" in ta and t not in ta]
                if not both:
                    raise SchemaError("allOf combines types that exclude each other")
                out[k] = both if len(both) > 1 else both[0]
            elif k == "enum" and isinstance(a, list) and isinstance(v, list):
                keep = {_dump(x) for x in v}
                out[k] = [x for x in a if _dump(x) in keep]
                if not out[k]:
                    raise SchemaError("allOf combines enums with no value in common")
            elif k in ("items", "additionalProperties"):
                if a is False or v is False:
                    out[k] = False
                elif a is True or a == {}:
                    out[k] = v
                elif not (v is True or v == {}):
                    out[k] = {"allOf": [a, v]}
    return out


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _bounds(s: dict):
    """(lo, lo inclusive, hi, hi inclusive) as Decimals, the tighter of each pair of keywords."""
    def dec(key):
        v = s[key]
        if not _num(v):
            raise SchemaError(f"{key} must be a number")
        if isinstance(v, float) and not isfinite(v):  # 1e999 reads as inf: floor() would overflow
            raise SchemaError(f"{key} must be a finite number")
        return Decimal(v) if isinstance(v, int) else Decimal(repr(v))

    lo, lo_incl, hi, hi_incl = None, True, None, True
    if "minimum" in s:
        lo = dec("minimum")
        if s.get("exclusiveMinimum") is True:  # draft 4
            lo_incl = False
    if "exclusiveMinimum" in s and not isinstance(s["exclusiveMinimum"], bool):
        v = dec("exclusiveMinimum")
        if lo is None or v >= lo:
            lo, lo_incl = v, False
    if "maximum" in s:
        hi = dec("maximum")
        if s.get("exclusiveMaximum") is True:
            hi_incl = False
    if "exclusiveMaximum" in s and not isinstance(s["exclusiveMaximum"], bool):
        v = dec("exclusiveMaximum")
        if hi is None or v <= hi:
            hi, hi_incl = v, False
    return lo, lo_incl, hi, hi_incl


def schema_to_grammar(schema) -> str:
    """GBNF (root rule `root`) for JSON values the schema accepts. SchemaError when it cannot."""
    conv = Converter(schema)
    conv.visit(schema, "")
    if "root" not in conv.rules:
        raise SchemaError("the schema produced no root rule")
    assert not conv.reserved
    text = conv.grammar()
    if len(text) > MAX_GRAMMAR_BYTES:
        raise SchemaError(f"the schema's grammar would be too large ({len(text)} bytes, at most {MAX_GRAMMAR_BYTES})")
    return text
