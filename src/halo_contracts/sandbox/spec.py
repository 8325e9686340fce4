"""Halo's OpenAPI slices, as the sandbox uses them.

Both slices (2024 and 2026) ship inside the package (``halo_contracts/openapi``); this module
reads them as data files and nothing else of the package. The sandbox serves the 2026 one
unless its ``document`` quirk says 2024. It answers three questions:

* which query parameters does an operation accept (strict mode rejects the others, and every
  mode rejects values of the wrong type, as ASP.NET model binding does);
* which schema does an operation's request body use;
* which properties (with which types) does a schema have, so posted objects can be checked
  the way Halo's JSON deserializer checks them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

SLICES = {"2024": "halo-api-contracts-slice.json", "2026": "halo-api-contracts-slice-2026.json"}


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # as in the slice, e.g. "/ClientContract/{id}"
    query: dict[str, str]  # lower-case name -> declared type ("int", "bool", "string", ...)
    body_schema: str | None  # item schema of the posted array
    regex: re.Pattern[str] = field(compare=False, repr=False)


@dataclass(frozen=True)
class Prop:
    type: str | None
    format: str | None
    nullable: bool
    ref: str | None  # object schema name
    items_ref: str | None  # array of schema name
    items_type: str | None


class Spec:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.operations: list[Operation] = []
        for template, ops in document.get("paths", {}).items():
            pattern = "^/api" + re.sub(r"\\\{[^}]+\\\}", r"[^/]+", re.escape(template.lower())) + "/?$"
            for method, op in ops.items():
                if method.lower() not in {"get", "post", "put", "delete", "patch"}:
                    continue
                query: dict[str, str] = {}
                for p in op.get("parameters", []):
                    if p.get("in") == "query":
                        schema = p.get("schema", {})
                        query[p["name"].lower()] = str(schema.get("type", "string"))
                body_schema = None
                content = op.get("requestBody", {}).get("content", {})
                for media in content.values():
                    schema = media.get("schema", {})
                    ref = schema.get("items", {}).get("$ref") or schema.get("$ref")
                    if ref:
                        body_schema = ref.rsplit("/", 1)[-1]
                    break
                self.operations.append(Operation(method.upper(), template, query, body_schema, re.compile(pattern)))
        # literal segments win over {id} templates (e.g. /Client/me, /RecurringInvoice/Lines)
        self.operations.sort(key=lambda o: o.template.count("{"))
        self._props: dict[str, dict[str, Prop]] = {}

    def operation(self, method: str, path: str) -> Operation | None:
        lowered = path.lower()
        for op in self.operations:
            if op.method == method.upper() and op.regex.match(lowered):
                return op
        return None

    def properties(self, schema: str) -> dict[str, Prop]:
        if schema not in self._props:
            raw = self.document["components"]["schemas"].get(schema, {}).get("properties", {})
            out: dict[str, Prop] = {}
            for name, p in raw.items():
                ref = p.get("$ref")
                items = p.get("items") or {}
                out[name] = Prop(
                    type=p.get("type"),
                    format=p.get("format"),
                    nullable=bool(p.get("nullable")) or ref is not None,
                    ref=ref.rsplit("/", 1)[-1] if ref else None,
                    items_ref=items["$ref"].rsplit("/", 1)[-1] if "$ref" in items else None,
                    items_type=items.get("type"),
                )
            self._props[schema] = out
        return self._props[schema]


@lru_cache(maxsize=2)
def load_spec(document: str = "2026") -> Spec:
    """Halo's 2026 OpenAPI slice (the shapes served by default) or the 2024 one."""
    text = resources.files("halo_contracts").joinpath("openapi", SLICES[document]).read_text("utf-8")
    return Spec(json.loads(text))


# --------------------------------------------------------------------------- values

_INT_RE = re.compile(r"^[+-]?\d+$")


def format_ts(value: date | datetime) -> str:
    """Halo's zone-less timestamp: ``2026-10-06T00:00:00``."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.replace(microsecond=0).isoformat()
    return _format_day(value)


@lru_cache(maxsize=4096)
def _format_day(value: date) -> str:
    return f"{value.isoformat()}T00:00:00"


def parse_ts(text: str) -> datetime | None:
    """Parse an ISO date or date-time (with or without zone); ``None`` when not a date."""
    s = text.strip()
    if not s:
        return None
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(s)
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _render(value: Any) -> str:
    if value is None:
        return "{null}"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (dict, list)):
        return "{" if isinstance(value, dict) else "["
    return str(value)


_NET_TYPES = {
    ("integer", "int32"): "System.Int32",
    ("integer", "int64"): "System.Int64",
    ("integer", None): "System.Int32",
    ("number", "double"): "System.Double",
    ("number", None): "System.Double",
    ("boolean", None): "System.Boolean",
    ("string", "date-time"): "System.DateTime",
}


def _unexpected(value: Any, path: str) -> str:
    return f"Unexpected character encountered while parsing value: {_render(value)}. Path '{path}'."


def _to_int(prop: Prop, value: Any, path: str) -> tuple[Any, str | None]:
    if isinstance(value, bool):
        return None, f"Error converting value {_render(value)} to type 'System.Int32'. Path '{path}'."
    if isinstance(value, int):
        return value, None
    if isinstance(value, float) and value.is_integer():
        return int(value), None
    if isinstance(value, str) and _INT_RE.match(value.strip()):
        return int(value.strip()), None
    if isinstance(value, (dict, list)):
        return None, _unexpected(value, path)
    return None, f"Could not convert string to integer: {_render(value)}. Path '{path}'."


def _to_number(prop: Prop, value: Any, path: str) -> tuple[Any, str | None]:
    if isinstance(value, bool):
        return None, f"Error converting value {_render(value)} to type 'System.Double'. Path '{path}'."
    if isinstance(value, (int, float)):
        return value, None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None, f"Could not convert string to double: {value}. Path '{path}'."
        return (int(number) if number.is_integer() and "." not in value else number), None
    return None, _unexpected(value, path)


def _to_bool(prop: Prop, value: Any, path: str) -> tuple[Any, str | None]:
    if isinstance(value, bool):
        return value, None
    if isinstance(value, int):
        return value != 0, None
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true", None
    if isinstance(value, (dict, list)):
        return None, _unexpected(value, path)
    return None, f"Could not convert string to boolean: {_render(value)}. Path '{path}'."


def _to_string(prop: Prop, value: Any, path: str) -> tuple[Any, str | None]:
    if isinstance(value, (dict, list)):
        return None, _unexpected(value, path)
    if prop.format == "date-time":
        if not isinstance(value, str):
            return None, f"Error converting value {_render(value)} to type 'System.DateTime'. Path '{path}'."
        parsed = parse_ts(value)
        if parsed is None:
            return None, f"Could not convert string to DateTime: {value}. Path '{path}'."
        return format_ts(parsed), None
    if isinstance(value, bool):
        return ("True" if value else "False"), None
    return (value if isinstance(value, str) else str(value)), None


def _to_array(prop: Prop, value: Any, path: str) -> tuple[Any, str | None]:
    if not isinstance(value, list):
        return None, (
            "Cannot deserialize the current JSON value into type 'System.Collections.Generic.List' "
            f"because the type requires a JSON array. Path '{path}'."
        )
    return value, None


def _to_object(prop: Prop, value: Any, path: str) -> tuple[Any, str | None]:
    if not isinstance(value, dict):
        return None, (
            "Cannot deserialize the current JSON value into an object because the type requires "
            f"a JSON object. Path '{path}'."
        )
    return value, None


_COERCE = {
    "integer": _to_int,
    "number": _to_number,
    "boolean": _to_bool,
    "string": _to_string,
    "array": _to_array,
    "object": _to_object,
}


def coerce(prop: Prop, value: Any, path: str) -> tuple[Any, str | None]:
    """Convert a posted JSON value the way Halo's deserializer would.

    Returns (value, error message or None). Messages follow Json.NET's wording.
    """
    kind = prop.type
    if value is None:
        if prop.nullable or kind in (None, "string", "array", "object"):
            return None, None
        net = _NET_TYPES.get((kind, prop.format), "System.Object")
        return None, f"Error converting value {{null}} to type '{net}'. Path '{path}'."
    convert = _COERCE.get(kind or "")
    if convert is None and prop.ref is not None:
        convert = _to_object
    return convert(prop, value, path) if convert is not None else (value, None)


def check_object(
    spec: Spec, schema: str, obj: dict[str, Any], path: str, strict: bool, errors: dict[str, list[str]]
) -> dict[str, Any]:
    """Validate one posted object against ``schema``; returns the coerced copy."""
    props = spec.properties(schema)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        where = f"{path}.{key}"
        prop = props.get(key)
        if prop is None:
            if strict:
                errors.setdefault(where, []).append(
                    f"Could not find member '{key}' on object of type '{schema}'. Path '{where}'."
                )
            else:
                out[key] = value
            continue
        coerced, error = coerce(prop, value, where)
        if error:
            errors.setdefault(where, []).append(error)
            continue
        if prop.items_ref and isinstance(coerced, list):
            items = []
            for i, item in enumerate(coerced):
                if isinstance(item, dict):
                    items.append(check_object(spec, prop.items_ref, item, f"{where}[{i}]", strict, errors))
                else:
                    errors.setdefault(f"{where}[{i}]", []).append(
                        f"Unexpected value for an object of type '{prop.items_ref}'. Path '{where}[{i}]'."
                    )
            coerced = items
        elif prop.ref and isinstance(coerced, dict):
            coerced = check_object(spec, prop.ref, coerced, where, strict, errors)
        out[key] = coerced
    return out
