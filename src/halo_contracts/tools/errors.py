"""One error format for every refusal of a tool's arguments (pure: no I/O, no clock).

``Invalid '<field>': <rule>. Fix: <fix>. Nothing was sent to Halo.`` -- with the field's path
(``changes.value``, ``items[0].unit_price``), whether the problem was found by our own checks or
by the schema validation the SDK runs before a tool body. Pydantic's structured errors are read
here and reworded; its own text and links never reach the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

NOTHING_SENT = "Nothing was sent to Halo."
# At most this many fields are described in one message; the rest are counted.
MAX_FIELDS = 3

# Which tool finds the id a field expects, when the model passed a name instead.
ID_FINDERS = {
    "client_id": "find_clients",
    "client_ids": "find_clients",
    "contract_id": "search_contracts",
    "contract_ids": "search_contracts",
    "previous_contract_id": "search_contracts",
}
FINDER_ARGUMENT = {"find_clients": "name", "search_contracts": "text"}  # where the text goes

# a number with its unit written after it: "3%", "60 days", "12 months", "2.5 h"
_WITH_UNIT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(%|percent|per cent|days?|months?|years?|hours?|hrs?|h|seats?)\s*$",
                        re.IGNORECASE)

_AMOUNT = re.compile(r"^\s*[-+]?\s*[$£€]?\s*[-+]?\d{1,3}(?:[,\s]\d{3})*(?:\.\d+)?\s*$|^\s*[$£€]?\s*\d+(?:\.\d+)?\s*$")
_SLASH_DATE = re.compile(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})\s*$")


class DateFormError(ValueError):
    """A date argument that is not a real YYYY-MM-DD date (raised by the argument types)."""


class NumberFormError(ValueError):
    """A number argument given as something else (raised by the argument types)."""


def message(field: str, rule: str, fix: str) -> str:
    """The one format."""
    return f"Invalid '{field}': {rule}. Fix: {fix}. {NOTHING_SENT}"


def field_path(loc: Sequence[Any]) -> str:
    """``("items", 0, "unit_price")`` -> ``items[0].unit_price``; pydantic's union branches dropped,
    and a dict key (the caller's text) not repeated: the path stops at the dict."""
    parts = list(loc)
    if "[key]" in parts:
        parts = parts[:max(parts.index("[key]") - 1, 1)]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _is_branch(part):
            out += ("." if out else "") + str(part)
    return out or "arguments"


def _is_branch(part: Any) -> bool:
    """A union branch or validator tag in a location: ``function-after[check(), str]``, ``int``."""
    return isinstance(part, str) and ("[" in part or part in {"int", "str", "none", "float", "bool"})


def _without_other_branches(errors: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """A union (text or a number) reports every branch at the same place; where one branch
    was refused by the text rule, that is the point, not the others."""
    places = {tuple(e["loc"][:-1]) for e in errors
              if e.get("type") == "text_rule" and e.get("loc") and _is_branch(e["loc"][-1])}
    return [e for e in errors if e.get("type") == "text_rule" or tuple(e.get("loc", ())[:-1]) not in places]


_WRAPPED = re.compile(r"^function-(?:after|before|wrap|plain)\[.*,\s*([^,]+)\]$")


def _branch_kind(tag: str) -> str | None:
    """The JSON type a union branch takes: ``str`` -> text, ``list[FeedLine]`` -> list, a model -> object."""
    m = _WRAPPED.match(tag)
    name = (m[1] if m else tag).strip()
    low = name.casefold()
    if low.startswith(("list[", "tuple[", "set[", "frozenset[")) or low in {"list", "tuple", "set"}:
        return "list"
    if low.startswith("dict[") or low == "dict" or (name[:1].isupper() and "[" not in name):
        return "object"
    return {"str": "text", "int": "number", "float": "number", "decimal": "number", "bool": "bool",
            "none": "null"}.get(low)


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "text"
    return "null" if value is None else "number"


def _branch_of_given_type(errors: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """A union (text or rows) reports every branch; when the caller gave a list, the list branch's
    problems (``source[27].quantity``) are the point, not "expected text" -- and so for any type."""
    given: dict[tuple, str] = {}  # union place -> the JSON type given there
    for e in errors:
        loc = tuple(e.get("loc", ()))
        if loc and isinstance(loc[-1], str) and _is_branch(loc[-1]) and "input" in e:
            given.setdefault(loc[:-1], _json_kind(e["input"]))

    def keep(e: Mapping[str, Any]) -> bool:
        loc = tuple(e.get("loc", ()))
        for place, kind in given.items():
            n = len(place)
            if len(loc) <= n or loc[:n] != place or not isinstance(loc[n], str):
                continue
            tags = {str(x["loc"][n]) for x in errors if tuple(x.get("loc", ()))[:n] == place and len(x["loc"]) > n}
            if any(_branch_kind(t) == kind for t in tags) and _branch_kind(loc[n]) != kind:
                return False
        return True

    return [e for e in errors if keep(e)]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def amount_in(text: str) -> str | None:
    """``"$2,500.00"`` -> ``"2500"``: the number a text amount stands for, if it is one."""
    if not _AMOUNT.match(text):
        return None
    digits = re.sub(r"[\s,$£€+]", "", text)
    if digits.count(".") > 1 or not re.fullmatch(r"-?\d+(\.\d+)?", digits):
        return None
    whole, _, frac = digits.partition(".")
    frac = frac.rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def date_fix(value: Any, today: date) -> str:
    """How to write a date, with today's date; a slashed date gets both of its readings."""
    base = f"write it as YYYY-MM-DD (today is {today.isoformat()})"
    m = _SLASH_DATE.match(value) if isinstance(value, str) else None
    if not m:
        return base
    a, b, year = int(m[1]), int(m[2]), int(m[3])
    readings = []
    for day, month in ((a, b), (b, a)):
        try:
            readings.append(date(year, month, day))
        except ValueError:
            continue
    readings = sorted(set(readings), key=lambda d: readings.index(d))
    if len(readings) == 2:
        first, second = readings
        return (f"'{value}' could be {first:%-d %B %Y} ({first.isoformat()}) or {second:%-d %B %Y} "
                f"({second.isoformat()}); ask which is meant, then pass it as YYYY-MM-DD (today is "
                f"{today.isoformat()})")
    if readings:
        return f"pass {readings[0].isoformat()} if that is the date meant (YYYY-MM-DD; today is {today.isoformat()})"
    return base


def text_for_number(field: str, value: str, *, expected: str) -> str:
    """A text value where the schema wants a number, id, list or object (the argument guard)."""
    if value.strip().lower() in {"true", "false", "yes", "no"} and "boolean" in expected:
        return message(field, f"expected true or false, got the text {_short(value)}", "pass true or false (no quotes)")
    leaf = field.rsplit(".", 1)[-1].split("[", 1)[0]
    amount = amount_in(value)
    if amount is not None:
        return message(field, f"expected {expected}, got the text {_short(value)}",
                       f"pass the number {amount} (no quotes, currency sign or thousands separators)")
    unit = _WITH_UNIT.match(value)
    if unit is not None and ("number" in expected or "integer" in expected):
        return message(field, f"expected {expected}, got the text {_short(value)}",
                       f"pass the number {unit[1]} (no quotes or unit)")
    finder = ID_FINDERS.get(leaf) or ("search_contracts" if "contract" in leaf and leaf.endswith("id")
                                      else "find_clients" if leaf.endswith("_id") or leaf.endswith("_ids")
                                      else None)
    if finder and not _looks_like_json(value):
        return message(field, f"expected a Halo id (a number), got the name {_short(value)}",
                       f"call {finder} with {FINDER_ARGUMENT[finder]}={json.dumps(value.strip()[:80])} to find the "
                       "id, then pass that number")
    return message(field, f"expected {expected}, got the text {_short(value)}",
                   "pass the value itself (e.g. 5, true, [1001, 1002] or an object), not JSON inside a string")


def _looks_like_json(value: str) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def describe_error(err: Mapping[str, Any], today: date) -> tuple[str, str, str]:
    """One pydantic error (``exc.errors()`` item) as (field, rule, fix) in our words."""
    field = field_path(err.get("loc", ()))
    kind = str(err.get("type", ""))
    value = err.get("input")
    ctx = err.get("ctx") or {}
    cause = ctx.get("error")
    if kind == "text_rule":
        return field, str(ctx.get("rule")), str(ctx.get("fix"))
    if isinstance(cause, DateFormError):
        rule = str(cause).rstrip(".")
        if rule.startswith("expected a date"):
            rule = f"expected a date in the form YYYY-MM-DD, got {_short(value)}"
        return field, rule, date_fix(value, today)
    if isinstance(cause, NumberFormError) or kind in {"int_type", "int_parsing", "float_type", "decimal_type"}:
        if isinstance(value, str):
            m = text_for_number(field, value, expected="a number")
            return _split(m)
        if isinstance(cause, NumberFormError):
            return field, str(cause).rstrip("."), "pass a plain number such as 2500 or 49.95"
        return field, f"expected a whole number, got {_short(value)}", "pass an integer such as 42"
    return field, _rule(kind, err, value), _fix(kind, err)


def _split(text: str) -> tuple[str, str, str]:
    m = re.match(r"^Invalid '(.*?)': (.*)\. Fix: (.*)\. " + re.escape(NOTHING_SENT) + "$", text, re.S)
    assert m, text
    return m[1], m[2], m[3]


_RULES = {
    "missing": "this argument is required",
    "extra_forbidden": "this is not a field of the object",
    "bool_type": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list",
    "dict_type": "expected an object",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
    "literal_error": "not one of the allowed values",
    "enum": "not one of the allowed values",
    "greater_than": "too small",
    "greater_than_equal": "too small",
    "less_than": "too large",
    "less_than_equal": "too large",
    "too_short": "too few items",
    "too_long": "too many items",
    "string_too_short": "too short",
    "string_too_long": "too long",
    "string_pattern_mismatch": "not in the expected form",
}


def _rule(kind: str, err: Mapping[str, Any], value: Any) -> str:
    ctx = err.get("ctx") or {}
    base = _RULES.get(kind)
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next((v for k, v in ctx.items() if k in {"gt", "ge", "lt", "le"}), "")
        return f"must be {op} {bound}, got {_short(value)}"
    if kind == "missing":
        return str(base)
    if base and kind == "extra_forbidden":
        return base
    if base:
        return f"{base}, got {_short(value)}"
    cause = ctx.get("error")
    if isinstance(cause, ValueError) and str(cause):
        return str(cause).rstrip(".")
    return f"this value is not accepted ({kind.replace('_', ' ') or 'invalid'})"


def _fix(kind: str, err: Mapping[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "pass it (see the tool's input schema)"
    bound = next((v for k, v in ctx.items() if k in {"gt", "ge", "lt", "le"}), None)
    if bound is not None:
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        return f"pass a value {op} {bound}"
    if kind == "extra_forbidden":
        return "remove it; use only the fields the tool's input schema lists"
    if kind in {"literal_error", "enum"} and ctx.get("expected"):
        return f"use one of {ctx['expected']}"
    if kind == "bool_type":
        return "pass true or false (no quotes)"
    if kind in {"list_type", "too_short", "too_long"}:
        return "pass a JSON list of the right length, e.g. [1001, 1002]"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return "pass an object with the fields the tool's input schema lists"
    if kind == "string_type":
        return "pass the value as text in quotes"
    return "correct the value (see the tool's input schema and its description)"


def format_errors(errors: Iterable[Mapping[str, Any]], today: date) -> str:
    """Every problem of a rejected call (up to ``MAX_FIELDS``) in one message, one format."""
    parts: list[str] = []
    seen: set[str] = set()
    for err in _branch_of_given_type(_without_other_branches(list(errors))):
        field, rule, fix = describe_error(err, today)
        if field in seen:
            continue
        seen.add(field)
        parts.append(f"Invalid '{field}': {rule}. Fix: {fix}.")
    extra = len(parts) - MAX_FIELDS
    text = " ".join(parts[:MAX_FIELDS]) or "Invalid 'arguments': not accepted. Fix: check the tool's input schema."
    if extra > 0:
        text += f" ({extra} more field{'s' if extra > 1 else ''} also invalid.)"
    return f"{text} {NOTHING_SENT}"
