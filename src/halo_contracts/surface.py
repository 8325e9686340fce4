"""How a tool meets the wire: one wrapper for every result and one pass over every schema.

* :func:`said_tool` wraps a tool function so the SDK returns the result said once: a short
  text (``Result.said()``), the structured content, and a ``resource_link`` to any plan the
  result names. The wrapper is annotated ``Annotated[CallToolResult, Model]``, so the SDK
  still publishes and validates the result model.
* :func:`compact_input` and :func:`envelope` shrink what ``tools/list`` publishes: no
  ``title`` keys, no ``null`` alternative on an optional argument (leaving it out says the
  same), descriptions on one line, and output schemas that describe the envelope: each
  top-level field by name, lists and objects typed as such, nothing nested.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from typing import Annotated, Any

from mcp.types import CallToolResult, ResourceLink, TextContent

from halo_contracts.tools.common import Result

PLAN_URI = "halopsa://plans/{plan_id}"


def said(result: Result) -> CallToolResult:
    """The CallToolResult of a tool's result model: its summary text, its data, its links."""
    content: list[Any] = [TextContent(type="text", text=result.said())]
    for plan_id in result.plan_links():
        content.append(ResourceLink(type="resource_link", uri=PLAN_URI.format(plan_id=plan_id), name=plan_id,
                                    title=f"Plan {plan_id}: every step with its exact Halo request",
                                    mime_type="application/json"))
    return CallToolResult(content=content, structured_content=result.model_dump(mode="json", by_alias=True))


def said_tool(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (async, returns a Result) as a tool returning ``Annotated[CallToolResult, Model]``."""
    hints = typing.get_type_hints(fn, include_extras=True)
    model = hints.get("return")
    if not (isinstance(model, type) and issubclass(model, Result)):
        raise TypeError(f"tool {fn.__name__} must return a Result model, not {model!r}")
    returns = Annotated[CallToolResult, model]

    async def tool(*args: Any, **kwargs: Any) -> Any:
        result = await fn(*args, **kwargs)
        # anything else (the SDK's input-required result while the person is asked) passes through
        return said(result) if isinstance(result, Result) else result

    tool.__name__, tool.__qualname__, tool.__module__ = fn.__name__, fn.__qualname__, fn.__module__
    tool.__doc__ = fn.__doc__
    tool.__signature__ = inspect.signature(fn, eval_str=True).replace(return_annotation=returns)  # type: ignore[attr-defined]
    tool.__annotations__ = {**hints, "return": returns}
    tool.__wrapped_tool__ = fn  # type: ignore[attr-defined]
    return tool


# ---- schemas ------------------------------------------------------------------------------------


def one_line(text: str | None) -> str | None:
    """A description dedented, its lines joined (blank lines keep a paragraph break)."""
    if not text:
        return text
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(text))
    return "\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def _nullable(branches: list[Any]) -> dict[str, Any] | None:
    """``anyOf [X, {"type": "null"}]`` as X with a type list, when X is a plain typed schema."""
    if len(branches) != 2 or {"type": "null"} not in branches:
        return None
    other = next(b for b in branches if b != {"type": "null"})
    if not isinstance(other, dict) or not isinstance(other.get("type"), str) or "anyOf" in other:
        return None
    merged = dict(other)
    merged["type"] = [other["type"], "null"]
    if "enum" in merged:
        merged["enum"] = [*merged["enum"], None]
    return merged


def compact_input(node: Any) -> Any:
    """The schema without titles, with nullable types as type lists, descriptions on one line."""
    if isinstance(node, list):
        return [compact_input(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "description" and isinstance(value, str):
            out[key] = one_line(value)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: compact_input(prop) for name, prop in value.items()}
        else:
            out[key] = compact_input(value)
    if isinstance(out.get("anyOf"), list):
        merged = _nullable(out["anyOf"])
        if merged is not None:
            rest = {k: v for k, v in out.items() if k != "anyOf"}
            out = {**merged, **rest}
    return out


def compact_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's input schema, compact (:func:`compact_input`), its optional arguments without
    ``"default": null`` or a ``null`` type: an argument left out is None, so saying null adds
    nothing (the tool still accepts an explicit null). Nested fields keep theirs, since a change
    set tells null (clear it) from absent (leave it)."""
    out = compact_input(schema)
    required = set(out.get("required") or [])
    for name, prop in (out.get("properties") or {}).items():
        if isinstance(prop, dict) and name not in required and prop.get("default", None) is None:
            out["properties"][name] = _without_null({k: v for k, v in prop.items() if k != "default"})
    for model in (out.get("$defs") or {}).values():
        for name, prop in (model.get("properties") or {}).items():
            if isinstance(prop, dict) and "default" in prop and prop["default"] is None:
                model["properties"][name] = {k: v for k, v in prop.items() if k != "default"}
    return out


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """An optional property's schema without its ``null`` alternative."""
    kind = prop.get("type")
    if isinstance(kind, list) and "null" in kind:
        rest = [t for t in kind if t != "null"]
        prop = {**prop, "type": rest[0] if len(rest) == 1 else rest}
        if isinstance(prop.get("enum"), list):
            prop["enum"] = [v for v in prop["enum"] if v is not None]
    branches = prop.get("anyOf")
    if isinstance(branches, list) and {"type": "null"} in branches:
        rest = [b for b in branches if b != {"type": "null"}]
        others = {k: v for k, v in prop.items() if k != "anyOf"}
        prop = {**rest[0], **others} if len(rest) == 1 and isinstance(rest[0], dict) else {**others, "anyOf": rest}
    return prop


def _types(prop: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    if "$ref" in prop:
        target = defs.get(str(prop["$ref"]).rsplit("/", 1)[-1], {})
        return _types(target, defs) if "$ref" not in target else ["object"]
    found: list[str] = []
    for branch in prop.get("anyOf", []) + prop.get("oneOf", []):
        found += [t for t in _types(branch, defs) if t not in found]
    kind = prop.get("type")
    for t in [kind] if isinstance(kind, str) else (kind or []):
        if t not in found:
            found.append(t)
    if not found and "enum" in prop:
        found = sorted({"string" if isinstance(v, str) else "null" if v is None else "number"
                        for v in prop["enum"]})
    return found


def _loose(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One envelope field: ``array`` or ``object`` when it is one (or may be null), else open:
    a scalar's type is plain from the field and its value, and saying it costs every listing."""
    types = [t for t in _types(prop, defs) if t != "null"]
    if len(types) == 1 and types[0] in ("array", "object"):
        nullable = "null" in _types(prop, defs)
        return {"type": [types[0], "null"] if nullable else types[0]}
    return {}


def envelope(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The output schema of a result model, reduced to its envelope: each top-level field by
    name, lists and objects as plain ``array``/``object``, scalars open. Nothing
    is marked required: the SDK validates every result against the full model anyway."""
    if not schema or not isinstance(schema.get("properties"), dict):
        return schema
    defs = schema.get("$defs", {})
    out: dict[str, Any] = {"type": "object",
                           "properties": {name: _loose(prop, defs) for name, prop in schema["properties"].items()}}
    return out
