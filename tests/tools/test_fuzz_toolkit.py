"""Self-test of the schema-driven strategies in ``support.fuzz`` (no server needed).

If these drift, the tool fuzzing silently tests less: valid draws must conform, invalid
mutations must not.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.fuzz import conforms, invalid_args, invalid_for, schema_valid_call, tool_args, valid

SCHEMAS = [
    {"type": "integer", "minimum": 1, "maximum": 50},
    {"type": "integer", "exclusiveMinimum": 0},
    {"type": "number", "minimum": 0},
    {"type": "string", "minLength": 1, "maxLength": 40},
    {"type": "string", "format": "date"},
    {"type": "string", "enum": ["Monthly", "Quarterly", "Annual"]},
    {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
    {"type": "array", "items": {"type": "integer", "exclusiveMinimum": 0}, "minItems": 1, "maxItems": 5},
    {"type": "string", "pattern": r"^C-\d{1,6}$"},
]

TOOL = {
    "type": "object",
    "properties": {
        "contract_id": {"type": "integer", "exclusiveMinimum": 0},
        "changes": {"$ref": "#/$defs/Changes"},
        "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 1, "maxItems": 3},
        "dry_run": {"type": "boolean", "default": False},
    },
    "required": ["contract_id", "changes"],
    "$defs": {
        "Changes": {"type": "object", "additionalProperties": False,
                    "properties": {"status": {"enum": ["Active", "Pending"], "type": "string"},
                                   "end_date": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
                                   "value": {"type": "number", "minimum": 0}}},
        "Item": {"type": "object", "additionalProperties": False, "required": ["description", "quantity"],
                 "properties": {"description": {"type": "string", "minLength": 1, "maxLength": 200},
                                "quantity": {"type": "number", "exclusiveMinimum": 0}}},
    },
}

FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: str(s)[:40])
@FAST
@given(data=st.data())
def test_valid_values_conform(schema, data):
    assert conforms(schema, data.draw(valid(schema)))


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: str(s)[:40])
def test_invalid_values_break_the_schema(schema):
    bad = invalid_for(schema, {})
    assert bad
    assert not any(conforms(schema, v) for v in bad)
    assert "1" in bad or "string" in str(schema.get("type", "")) or "anyOf" in schema


def test_strictness_of_the_classifier():
    assert not conforms({"type": "integer"}, "1")
    assert not conforms({"type": "integer"}, True)
    assert not conforms({"type": "integer"}, 1.0)
    assert not conforms({"type": "string"}, 1)
    assert not conforms({"type": "string", "format": "date"}, "2026-02-30")
    assert conforms({"type": "number"}, 3)
    assert not schema_valid_call(TOOL, {"contract_id": 1, "changes": {}, "surprise": 1})


@FAST
@given(data=st.data())
def test_tool_args_conform_and_mutations_do_not(data):
    args = data.draw(tool_args(TOOL, force={"dry_run": True}))
    assert args["dry_run"] is True
    assert schema_valid_call(TOOL, args)
    bad, why = data.draw(invalid_args(TOOL, force={"dry_run": True}))
    assert not schema_valid_call(TOOL, bad), why
