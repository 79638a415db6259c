"""JSON Schema to GBNF grammars (llama-server's json_schema and response_format)."""

from .convert import SchemaError, schema_to_grammar

__all__ = ["SchemaError", "schema_to_grammar"]
