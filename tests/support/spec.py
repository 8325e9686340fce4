"""Spec conformance: check requests against both of Halo's OpenAPI slices shipped in the package.

Every request is checked against the 2026 slice (the best public picture of Halo today) and
the 2024 one. Where they differ the 2026 slice decides: its problems are ``violations``; a
problem only the 2024 slice has (a filter the 2026 document added, a field it dropped...) is
recorded in ``older_only`` so a test can pin exactly which differences the client relies on.

Small API, meant for reuse in any test that sends Halo requests:

    from support.spec import SpecCheckingTransport

    checked = SpecCheckingTransport(inner_transport)      # wraps any async transport
    async with HaloClient(settings, transport=checked) as halo:
        ...
    checked.assert_clean()          # fails listing every violation
    checked.violations              # list[str], empty when all requests conform (2026 slice)
    checked.older_only              # list[str]: what only the 2024 slice refuses
    checked.requests                # list[CheckedRequest] (method, path, template, query, body, problems)
    checked.operations()            # {("GET", "/ClientContract/{id}"), ...} seen so far

What is checked for every request under ``/api`` (paths case-insensitive, as Halo's are):
the path matches a path template of the slice (``/ClientContract/{id}``, integer path ids);
the method exists for it; every query parameter name is declared for that operation and its
value has the declared basic type (booleans ``true``/``false``) and, where the parameter's
description lists its values (``values 'a', 'b'`` or ``Examples: ... 'a', ... 'b'``, e.g.
/Tickets ``datesearch``: 'dateoccured', 'datecleared'), is one of them (case-insensitive); a JSON body is present
exactly when the operation has one, is an array when the schema says so, and each object
uses only property names of the schema with values of the declared basic type
(integer/number/string/boolean/array/object, ``nullable`` honoured, ``$ref`` followed).
Requests outside ``/api`` (the OAuth token endpoint) are recorded but not checked.

``check_request(method, path, query, body, document="2026")`` runs the same checks without a
transport; ``load_spec("2024")`` is the older slice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

import httpx2

__all__ = ["CheckedRequest", "HaloSpec", "SpecCheckingTransport", "check_request", "load_spec"]

SLICES = {"2024": "halo-api-contracts-slice.json", "2026": "halo-api-contracts-slice-2026.json"}
_METHODS = {"get", "post", "put", "patch", "delete"}


@dataclass
class _Op:
    method: str
    template: str
    regex: re.Pattern[str]
    path_params: list[str]
    query: dict[str, dict[str, Any]]  # lower-case name -> schema
    body: dict[str, Any] | None
    documented: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> values its description lists


def _documented_values(description: str) -> tuple[str, ...]:
    """The values a query parameter's description lists ("values 'a', 'b'", "Examples: X - 'a'")."""
    if not re.search(r"\b(values|examples?)\b", description, re.IGNORECASE):
        return ()
    return tuple(re.findall(r"'([^']+)'", description))


class HaloSpec:
    """The slice, indexed for request checking."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
        self.ops: list[_Op] = []
        for template, item in document.get("paths", {}).items():
            shared = item.get("parameters", []) if isinstance(item, dict) else []
            names = re.findall(r"\{([^}]+)\}", template)
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", r"([^/]+)", re.escape(template.lower())) + "/?$"
            for method, op in item.items():
                if method.lower() not in _METHODS:
                    continue
                params = [*shared, *op.get("parameters", [])]
                query = {p["name"].lower(): p.get("schema", {}) for p in params if p.get("in") == "query"}
                content = op.get("requestBody", {}).get("content", {})
                body = None
                for mime in ("application/json", "text/json", "application/*+json"):
                    if mime in content:
                        body = content[mime].get("schema")
                        break
                documented = {p["name"].lower(): values for p in params if p.get("in") == "query"
                              if (values := _documented_values(p.get("description") or ""))}
                self.ops.append(_Op(method.upper(), template, re.compile(pattern), names, query, body, documented))
        # literal segments beat {id} (e.g. /RecurringInvoice/Lines vs /RecurringInvoice/{id})
        self.ops.sort(key=lambda o: o.template.count("{"))

    def resolve(self, schema: dict[str, Any] | None) -> dict[str, Any]:
        seen = 0
        while schema and "$ref" in schema and seen < 20:
            schema = self.schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
            seen += 1
        return schema or {}

    def find(self, method: str, path: str) -> tuple[_Op | None, list[str]]:
        """The operation for ``method path`` (path without ``/api``), or None and why."""
        lower = path.lower()
        templates = [op for op in self.ops if op.regex.match(lower)]
        if not templates:
            return None, [f"{method} /api{path}: no such path in the slice"]
        for op in templates:
            if op.method == method.upper():
                return op, []
        allowed = sorted({op.method for op in templates})
        return None, [f"{method} /api{path}: method not allowed by the slice (allowed: {', '.join(allowed)})"]

    # ---- value checks --------------------------------------------------------------------
    def check_value(self, schema: dict[str, Any], value: Any, where: str, depth: int = 0) -> list[str]:
        nullable = bool(schema.get("nullable"))
        schema = self.resolve(schema) if "$ref" in schema else schema
        if value is None:
            if nullable or schema.get("nullable"):
                return []
            return [f"{where}: null is not allowed (not nullable)"]
        kind = schema.get("type")
        if kind is None and "properties" in schema:
            kind = "object"
        problems: list[str] = []
        if kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"{where}: expected integer, got {type(value).__name__} {value!r}")
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(f"{where}: expected number, got {type(value).__name__} {value!r}")
        elif kind == "boolean":
            if not isinstance(value, bool):
                problems.append(f"{where}: expected boolean, got {type(value).__name__} {value!r}")
        elif kind == "string":
            if not isinstance(value, str):
                problems.append(f"{where}: expected string, got {type(value).__name__} {value!r}")
            elif schema.get("format") == "date-time" and not _is_datetime(value):
                problems.append(f"{where}: {value!r} is not a date-time")
        elif kind == "array":
            if not isinstance(value, list):
                problems.append(f"{where}: expected array, got {type(value).__name__}")
            elif depth < 6:
                items = schema.get("items", {})
                for i, item in enumerate(value):
                    problems += self.check_value(items, item, f"{where}[{i}]", depth + 1)
        elif kind == "object":
            if not isinstance(value, dict):
                problems.append(f"{where}: expected object, got {type(value).__name__}")
            elif depth < 6:
                props = schema.get("properties")
                if props is not None:
                    for key, item in value.items():
                        if key not in props:
                            problems.append(f"{where}.{key}: no such property in the schema")
                        else:
                            problems += self.check_value(props[key], item, f"{where}.{key}", depth + 1)
        return problems

    def check_query_value(self, schema: dict[str, Any], name: str, text: str, where: str) -> list[str]:
        kind = self.resolve(schema).get("type") if "$ref" in schema else schema.get("type")
        # the slice's query schemas use .NET-ish names (int, bool, double) as well as JSON Schema's
        kind = {"int": "integer", "long": "integer", "bool": "boolean", "double": "number",
                "float": "number", "decimal": "number"}.get(str(kind), kind)
        if kind == "integer" and not re.fullmatch(r"-?\d+", text):
            return [f"{where}: query {name}={text!r} is not an integer"]
        if kind == "number" and not re.fullmatch(r"-?\d+(\.\d+)?", text):
            return [f"{where}: query {name}={text!r} is not a number"]
        if kind == "List<int>" and not re.fullmatch(r"-?\d+(,-?\d+)*", text):
            return [f"{where}: query {name}={text!r} is not a comma-separated list of integers"]
        if kind == "boolean" and text not in ("true", "false"):
            return [f"{where}: query {name}={text!r} is not true/false"]
        if kind == "string" and schema.get("format") == "date-time" and not _is_datetime(text):
            return [f"{where}: query {name}={text!r} is not a date-time"]
        return []

    def check(self, method: str, path: str, query: list[tuple[str, str]] | Mapping[str, str],
              body: Any = None, *, has_body: bool | None = None) -> tuple[_Op | None, list[str]]:
        """Problems of one request; ``path`` is under ``/api`` (without the prefix)."""
        op, problems = self.find(method, path)
        if op is None:
            return None, problems
        where = f"{method} /api{path}"
        # path parameters: ids are integers
        m = op.regex.match(path.lower())
        if m:
            for name, raw in zip(op.path_params, m.groups(), strict=False):
                if not re.fullmatch(r"-?\d+", raw):
                    problems.append(f"{where}: path parameter {name}={raw!r} is not an integer")
        pairs = list(query.items()) if isinstance(query, Mapping) else list(query)
        names = [n for n, _ in pairs]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"{where}: query parameter {name!r} sent twice")
        for name, value in pairs:
            schema = op.query.get(name.lower())
            if schema is None:
                problems.append(f"{where}: query parameter {name!r} is not declared for {op.method} {op.template}")
            else:
                if name != name.lower() and name.lower() in op.query:
                    pass  # Halo's names are case-insensitive; accept
                problems += self.check_query_value(schema, name, value, where)
                values = op.documented.get(name.lower())
                if values and value.lower() not in {v.lower() for v in values}:
                    problems.append(f"{where}: query {name}={value!r} is not one of the values the slice documents "
                                    f"({', '.join(repr(v) for v in values)})")
        present = body is not None if has_body is None else has_body
        if op.body is None:
            if present:
                problems.append(f"{where}: the slice declares no request body, but one was sent")
        else:
            if not present:
                problems.append(f"{where}: the slice declares a request body, none was sent")
            else:
                schema = op.body
                if schema.get("type") == "array" and not isinstance(body, list):
                    problems.append(f"{where}: body must be a JSON array, got {type(body).__name__}")
                else:
                    problems += self.check_value(schema, body, f"{where} body")
        return op, problems


def _is_datetime(text: str) -> bool:
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    candidate = re.sub(r"(\.\d{1,6})\d*", r"\1", candidate, count=1)
    try:
        datetime.fromisoformat(candidate)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=2)
def load_spec(document: str = "2026") -> HaloSpec:
    """A slice shipped in ``halo_contracts/openapi`` (never ``../shared``): "2026" or "2024"."""
    text = resources.files("halo_contracts.openapi").joinpath(SLICES[document]).read_text(encoding="utf-8")
    return HaloSpec(json.loads(text))


def check_request(method: str, path: str, query: Mapping[str, str] | list[tuple[str, str]] | None = None,
                  body: Any = None, *, document: str = "2026") -> list[str]:
    """Problems of one request (``path`` with or without ``/api``); ``[]`` when it conforms."""
    if path.lower().startswith("/api/"):
        path = path[4:]
    return load_spec(document).check(method.upper(), path, query or {}, body)[1]


@dataclass
class CheckedRequest:
    method: str
    path: str
    template: str | None
    query: list[tuple[str, str]]
    body: Any
    problems: list[str] = field(default_factory=list)  # against the 2026 slice (it decides)
    older_problems: list[str] = field(default_factory=list)  # against the 2024 slice, where 2026 allows it


class SpecCheckingTransport(httpx2.AsyncBaseTransport):
    """Wraps any async transport; records and checks every request, then forwards it."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, *, spec: HaloSpec | None = None,
                 older: HaloSpec | None = None, api_prefix: str = "/api") -> None:
        self.inner = inner
        self.spec = spec or load_spec("2026")
        self.older = older or load_spec("2024")
        self.api_prefix = api_prefix.lower()
        self.requests: list[CheckedRequest] = []
        self.outside: list[tuple[str, str]] = []  # (method, path) of non-API requests (token)

    @property
    def violations(self) -> list[str]:
        return [p for r in self.requests for p in r.problems]

    @property
    def older_only(self) -> list[str]:
        """What the 2024 slice refuses in requests the 2026 slice allows."""
        return [p for r in self.requests if not r.problems for p in r.older_problems]

    def operations(self) -> set[tuple[str, str]]:
        return {(r.method, r.template) for r in self.requests if r.template}

    def assert_clean(self) -> None:
        problems = self.violations
        assert not problems, f"{len(problems)} request(s) break Halo's OpenAPI slice:\n  " + "\n  ".join(problems)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path.lower().startswith(self.api_prefix + "/"):
            self.requests.append(self._check(request, path[len(self.api_prefix):]))
        else:
            self.outside.append((request.method, path))
        return await self.inner.handle_async_request(request)

    def _check(self, request: httpx2.Request, path: str) -> CheckedRequest:
        raw_query = request.url.query
        text = raw_query.decode() if isinstance(raw_query, bytes) else str(raw_query)
        query = parse_qsl(text, keep_blank_values=True)
        content = request.content
        body: Any = None
        problems: list[str] = []
        has_body = bool(content)
        if content:
            ctype = request.headers.get("content-type", "")
            if "json" not in ctype:
                problems.append(f"{request.method} {request.url.path}: body is {ctype or 'untyped'}, not JSON")
            try:
                body = json.loads(content)
            except ValueError:
                problems.append(f"{request.method} {request.url.path}: body is not valid JSON")
        op, found = self.spec.check(request.method, path, query, body, has_body=has_body)
        _, older = self.older.check(request.method, path, query, body, has_body=has_body)
        return CheckedRequest(request.method, path, op.template if op else None, query, body, problems + found,
                              older)

    async def aclose(self) -> None:
        await self.inner.aclose()
