"""Schemas every constrained output must validate against: each entry is
(name, schema, what to ask the model for). Together they cover types,
properties / required / additionalProperties, enums, const, arrays with bounds
and tuples, strings with lengths, patterns and formats, bounded numbers,
anyOf / oneOf / allOf, nullable types and local (also recursive) $refs."""

from __future__ import annotations

import datetime
import json
import re
import uuid

import jsonschema

# Schemas that allow documents of any size: a small model may still be writing one when the token
# budget runs out (the grammar walks in tests/pyllama check that every finished one validates).
UNBOUNDED = {"any-object", "recursive-tree", "recursive-list"}

CORPUS: list[tuple[str, dict, str]] = [
    ("any-object", {}, "Describe a book as JSON."),
    ("string", {"type": "string", "maxLength": 40}, "Give a city name as a JSON string."),
    ("integer", {"type": "integer"}, "Give a number of apples as JSON."),
    ("number", {"type": "number"}, "Give a temperature as JSON."),
    ("boolean", {"type": "boolean"}, "Is the sky blue? Answer as JSON."),
    ("null", {"type": "null"}, "Answer with JSON null."),
    ("person", {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 30}, "age": {"type": "integer", "minimum": 0,
                                                                              "maximum": 150}},
        "required": ["name", "age"]}, "Describe a person as JSON."),
    ("optional-properties", {
        "type": "object",
        "properties": {"a": {"type": "boolean"}, "b": {"type": "integer", "maximum": 99}, "c": {"type": "null"},
                       "d": {"type": "string", "maxLength": 8}}}, "Give an object as JSON."),
    ("additional-typed", {
        "type": "object", "properties": {"id": {"type": "integer", "minimum": 1, "maximum": 999}},
        "required": ["id"], "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 9},
        "maxProperties": 4}, "Give some counters as JSON."),
    ("additional-false", {
        "type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
        "required": ["x", "y"], "additionalProperties": False}, "Give a point as JSON."),
    ("property-counts", {"type": "object", "properties": {"p": {"type": "boolean"}, "q": {"type": "boolean"}},
                         "additionalProperties": {"type": "boolean"}, "minProperties": 1, "maxProperties": 3},
     "Give a few flags as JSON."),
    ("required-undeclared", {"type": "object", "required": ["kind"], "properties": {},
                             "additionalProperties": {"type": "string", "maxLength": 12}, "maxProperties": 3},
     "Give an object with a kind as JSON."),
    ("enum", {"type": "string", "enum": ["red", "green", "blue"]}, "Pick a colour as JSON."),
    ("enum-mixed", {"enum": [1, "two", None, True, {"k": [3]}]}, "Pick a value as JSON."),
    ("const", {"type": "object", "properties": {"version": {"const": "1.0"}, "ok": {"const": True}},
               "required": ["version", "ok"]}, "Give a version record as JSON."),
    ("array-bounds", {"type": "array", "items": {"type": "integer", "minimum": -5, "maximum": 5},
                      "minItems": 2, "maxItems": 4}, "List a few small numbers as JSON."),
    ("array-strings", {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 10},
                       "minItems": 1, "maxItems": 3}, "List some fruits as JSON."),
    ("tuple", {"type": "array", "prefixItems": [{"type": "string", "maxLength": 10}, {"type": "integer"},
                                                {"type": "boolean"}], "items": False},
     "Give a name, a count and a flag as a JSON array."),
    ("string-length", {"type": "string", "minLength": 3, "maxLength": 6}, "Give a short word as JSON."),
    ("pattern-phone", {"type": "string", "pattern": "^\\(\\d{3}\\) \\d{3}-\\d{4}$"}, "Give a phone number as JSON."),
    ("pattern-code", {"type": "string", "pattern": "^[A-Z]{2,3}-[0-9a-f]{4}(_v[1-9])?$"},
     "Give a product code as JSON."),
    ("pattern-quotes", {"type": "string", "pattern": "^\"[a-z]{1,8}\"\\\\?$"}, "Give a quoted word as JSON."),
    ("pattern-unanchored", {"type": "string", "pattern": "[0-9]{2}"},
     "Give a string containing a two-digit number as JSON."),
    ("formats", {"type": "object", "properties": {
        "date": {"type": "string", "format": "date"}, "time": {"type": "string", "format": "time"},
        "when": {"type": "string", "format": "date-time"}, "id": {"type": "string", "format": "uuid"}},
        "required": ["date", "time", "when", "id"]}, "Give an event record as JSON."),
    ("integer-bounds", {"type": "object", "properties": {
        "small": {"type": "integer", "minimum": -10, "maximum": 10},
        "big": {"type": "integer", "exclusiveMinimum": 1000, "exclusiveMaximum": 100000},
        "neg": {"type": "integer", "maximum": -3}}, "required": ["small", "big", "neg"]},
     "Give three integers as JSON."),
    ("number-bounds", {"type": "object", "properties": {
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "price": {"type": "number", "exclusiveMinimum": 0.5, "maximum": 99.99},
        "delta": {"type": "number", "minimum": -2.25, "exclusiveMaximum": 0}},
        "required": ["ratio", "price", "delta"]}, "Give a ratio, a price and a delta as JSON."),
    ("anyOf", {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 9}, {"type": "string", "maxLength": 5}]},
     "Give a digit or a short word as JSON."),
    ("oneOf", {"oneOf": [
        {"type": "object", "properties": {"cat": {"type": "string", "maxLength": 10}}, "required": ["cat"]},
        {"type": "object", "properties": {"dog": {"type": "integer", "maximum": 20}}, "required": ["dog"]}]},
     "Give a pet as JSON."),
    ("allOf", {"allOf": [
        {"type": "object", "properties": {"a": {"type": "integer", "maximum": 50}}, "required": ["a"]},
        {"properties": {"b": {"type": "string", "maxLength": 10}}, "required": ["b"]},
        {"properties": {"a": {"minimum": 10}}}]}, "Give an object with a and b as JSON."),
    ("allOf-anyOf", {"allOf": [
        {"type": "object", "properties": {"kind": {"enum": ["x", "y"]}}, "required": ["kind"]},
        {"anyOf": [{"properties": {"n": {"type": "integer", "maximum": 9}}, "required": ["n"]},
                   {"properties": {"s": {"type": "string", "maxLength": 4}}, "required": ["s"]}]}]},
     "Give a tagged value as JSON."),
    ("nullable", {"type": "object", "properties": {
        "maybe": {"type": ["string", "null"], "maxLength": 10},
        "open": {"type": "integer", "maximum": 100, "nullable": True}}, "required": ["maybe", "open"]},
     "Give an object whose fields may be null, as JSON."),
    ("refs", {"$defs": {"point": {"type": "object", "properties": {"x": {"type": "integer", "maximum": 99},
                                                                    "y": {"type": "integer", "maximum": 99}},
                                  "required": ["x", "y"]}},
              "type": "object", "properties": {"from": {"$ref": "#/$defs/point"}, "to": {"$ref": "#/$defs/point"}},
              "required": ["from", "to"]}, "Give a line segment as JSON."),
    ("recursive-tree", {"$defs": {"node": {"type": "object", "properties": {
        "value": {"type": "integer", "maximum": 99},
        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
        "required": ["value"]}}, "$ref": "#/$defs/node"}, "Give a small tree as JSON."),
    ("recursive-list", {"definitions": {"cell": {"anyOf": [{"type": "null"}, {
        "type": "object", "properties": {"head": {"type": "boolean"}, "tail": {"$ref": "#/definitions/cell"}},
        "required": ["head", "tail"]}]}}, "$ref": "#/definitions/cell"}, "Give a linked list as JSON."),
    ("nested", {"type": "object", "properties": {
        "user": {"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 20},
            "roles": {"type": "array", "items": {"enum": ["admin", "dev", "ops"]}, "maxItems": 3}},
            "required": ["name", "roles"]},
        "active": {"type": "boolean"}}, "required": ["user", "active"]}, "Give an account as JSON."),
    ("unicode-keys", {"type": "object", "properties": {"名前": {"type": "string", "maxLength": 10},
                                                       "naïve \"q\"": {"type": "boolean"}},
                      "required": ["名前", "naïve \"q\""]}, "Give a record as JSON."),
]


def check_formats(value, schema) -> None:
    """The formats jsonschema only checks with optional packages, checked here."""
    if isinstance(value, dict):
        for k, v in value.items():
            sub = schema.get("properties", {}).get(k, {}) if isinstance(schema, dict) else {}
            check_formats(v, sub)
    if isinstance(schema, dict) and isinstance(value, str):
        fmt = schema.get("format")
        if fmt == "date":
            datetime.date.fromisoformat(value)
        elif fmt == "time":
            assert re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)", value)
        elif fmt == "date-time":
            d, t = value.split("T")
            datetime.date.fromisoformat(d)
            check_formats(t, {"format": "time"})
        elif fmt == "uuid":
            uuid.UUID(value)


def openapi_nullable(schema):
    """jsonschema does not know OpenAPI's `nullable`: spell it as a type list for validation."""
    if isinstance(schema, list):
        return [openapi_nullable(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: openapi_nullable(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


# jsonschema checks "time" the draft-3 way (no offset) without optional packages: check_formats does it
FORMAT_CHECKER = jsonschema.FormatChecker(formats=("date", "uuid", "regex"))


def validate(text: str, schema) -> None:
    value = json.loads(text)
    jsonschema.Draft202012Validator(openapi_nullable(schema), format_checker=FORMAT_CHECKER).validate(value)
    check_formats(value, schema)
