"""The layers hold (docs/DESIGN.md, "Layers and the one direction of dependency").

Read from the source with ``ast``, nothing imported to check it:

* Halo's wire names (field names, list keys, URL paths and object names) appear only in
  ``halo/``; the forbidden set is derived from ``halo/wire.py`` and ``halo/client.py`` so it
  follows the mapping. ``sandbox/`` is exempt: it emulates Halo. Docstrings may describe Halo.
* ``domain/`` is pure: no clock, no I/O, no HTTP, no MCP, nothing from the layers above it.
* No tool module imports another tool module (shared helpers live in ``tools/common.py``).
* ``sandbox/`` imports nothing from the rest of the package.
* Tools report progress only through the call's channel (``progress_of(ctx)``), so values
  keep increasing.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "halo_contracts"
IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
HALO_PATH = re.compile(r"^/(?:api/)?[A-Z][A-Za-z]+")

# Plain words Halo also uses as field names or list keys: on their own they say nothing about
# the wire (a feed column called "price", a result list called "contracts").
PLAIN_WORDS = {"price", "count", "name", "note", "status", "ref", "date", "contracts", "invoices", "clients",
               "licences", "tickets", "id", "period"}

Violation = tuple[str, int, str]


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def modules(*parts: str, exclude: Iterable[str] = ()) -> Iterator[tuple[str, ast.Module]]:
    """(path relative to the package, tree) of every module under ``parts``, minus ``exclude``."""
    skip = tuple(exclude)
    for path in sorted(SRC.joinpath(*parts).rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if not rel.startswith(skip) or not skip:
            yield rel, parse(path)


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def code_strings(tree: ast.AST) -> Iterator[ast.Constant]:
    """String constants that are not docstrings."""
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node


# ---- the forbidden set, derived from halo/ --------------------------------------------------------


def _wire_names(tree: ast.Module) -> set[str]:
    """Names wire.py reads from or writes to Halo's JSON: ``row.get("x")``, ``row["x"]``, the
    Halo side of every ``WireField`` (and what it also reads), dict keys in ``*_to_wire``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "get" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                names.add(node.args[0].value)
            if isinstance(func, ast.Name) and func.id == "WireField" and len(node.args) > 1:
                names.add(node.args[1].value)
                for kw in node.keywords:
                    if kw.arg == "also_reads" and isinstance(kw.value, ast.Tuple):
                        names.update(e.value for e in kw.value.elts if isinstance(e, ast.Constant))
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            names.add(node.slice.value)
        elif isinstance(node, ast.FunctionDef) and node.name.endswith("_to_wire"):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Dict):
                    names.update(k.value for k in inner.keys if isinstance(k, ast.Constant))
    return {n for n in names if isinstance(n, str) and IDENT.match(n)}


def _our_vocabulary() -> set[str]:
    """Friendly names: the wire tables' own side, and the fields of domain/ and plans/ models."""
    words: set[str] = set()
    wire = parse(SRC / "halo" / "wire.py")
    for node in ast.walk(wire):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "WireField":
            words.add(node.args[0].value)
    for _rel, tree in [*modules("domain"), *modules("plans")]:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                words.update(st.target.id for st in node.body
                             if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name))
    return words | PLAIN_WORDS


def _list_keys_and_paths() -> tuple[set[str], set[str]]:
    """``key=`` list wrapper names and the URL paths the client sends to."""
    keys: set[str] = set()
    paths: set[str] = set()
    for _rel, tree in modules("halo"):
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "key" and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, str):
                keys.add(node.value.value)
        for const in code_strings(tree):
            match = HALO_PATH.match(const.value)
            if match:
                paths.add(match.group(0).removeprefix("/api"))
    return keys, paths


def forbidden_wire_names() -> tuple[set[str], set[str], set[str]]:
    """(field names and list keys, path roots, Halo object names) that only halo/ may write."""
    keys, paths = _list_keys_and_paths()
    names = (_wire_names(parse(SRC / "halo" / "wire.py")) | keys) - _our_vocabulary()
    # object names made of two words (ClientContract, RecurringInvoice, ...) are Halo's own
    objects = {p.lstrip("/") for p in paths if len(re.findall(r"[A-Z][a-z]+", p)) >= 2}
    return names, paths, objects


def wire_violations(rel: str, tree: ast.AST, names: set[str], paths: set[str], objects: set[str]) -> list[Violation]:
    found: list[Violation] = []
    object_words = re.compile(r"\b(?:" + "|".join(sorted(objects)) + r")\b") if objects else None
    for const in code_strings(tree):
        text = const.value
        match = HALO_PATH.match(text)
        if text in names:
            found.append((rel, const.lineno, f"Halo field name {text!r}"))
        elif match and (match.group(0).removeprefix("/api") in paths or text.startswith("/api/")):
            found.append((rel, const.lineno, f"Halo path in {text[:50]!r}"))
        elif object_words and object_words.search(text):
            found.append((rel, const.lineno, f"Halo object name in {text[:50]!r}"))
    return found


def test_the_forbidden_set_follows_the_wire_mapping():
    names, paths, objects = forbidden_wire_names()
    assert {"periodchargeamount", "qty_order", "ihid", "contracttype", "product_sku", "timetaken"} <= names
    assert {"start_date", "client_id", "value", "notes", "quantity"}.isdisjoint(names)  # ours as well
    assert {"/ClientContract", "/RecurringInvoice", "/SoftwareLicence", "/Invoice", "/Actions"} <= paths
    assert {"ClientContract", "RecurringInvoice", "SoftwareLicence", "ClientPrepay"} <= objects


def test_the_wire_check_catches_a_planted_name():
    names, paths, objects = forbidden_wire_names()
    planted = ast.parse('row = {"periodchargeamount": 1}\nURL = "/api/ClientContract"\n'
                        'msg = "sent to RecurringInvoice"\nfine = {"value": 1, "notes": "x"}\n')
    found = wire_violations("tools/x.py", planted, names, paths, objects)
    assert sorted(line for _, line, _ in found) == [1, 2, 3]


def test_no_wire_names_outside_halo():
    names, paths, objects = forbidden_wire_names()
    found = [v for rel, tree in modules(exclude=("halo/", "sandbox/"))
             for v in wire_violations(rel, tree, names, paths, objects)]
    assert not found, "\n".join(f"{rel}:{line}: {what}" for rel, line, what in found)


# ---- domain/ is pure ------------------------------------------------------------------------------

IO_MODULES = {"os", "pathlib", "socket", "sqlite3", "time", "httpx", "httpx2", "subprocess", "shutil", "tempfile",
              "urllib", "asyncio", "anyio", "mcp", "requests", "psycopg", "logging"}
UPPER_LAYERS = {"halo", "plans", "tools", "server", "sandbox", "skill", "prompts", "http", "cli", "doctor", "demo",
                "progress", "access", "oauth"}
CLOCK_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
               ("time", "time"), ("time", "monotonic")}
IO_CALLS = {"open", "print", "input", "Path"}


def purity_violations(rel: str, tree: ast.AST) -> list[Violation]:
    found: list[Violation] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in IO_MODULES:
                    found.append((rel, node.lineno, f"imports {alias.name}"))
        elif isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] in IO_MODULES:
                found.append((rel, node.lineno, f"imports from {node.module}"))
            if parts[0] == "halo_contracts" and len(parts) > 1 and parts[1] in UPPER_LAYERS:
                found.append((rel, node.lineno, f"imports from {node.module} (a layer above domain/)"))
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                    and (func.value.id, func.attr) in CLOCK_CALLS:
                found.append((rel, node.lineno, f"reads the clock ({func.value.id}.{func.attr}())"))
            elif isinstance(func, ast.Name) and func.id in IO_CALLS:
                found.append((rel, node.lineno, f"does I/O ({func.id}())"))
    return found


def test_the_purity_check_catches_clock_and_io():
    planted = ast.parse("import os\nfrom datetime import date\nfrom halo_contracts.halo.client import HaloClient\n"
                        "x = date.today()\nopen('f')\nfrom decimal import Decimal\n")
    assert sorted(line for _, line, _ in purity_violations("domain/x.py", planted)) == [1, 3, 4, 5]


def test_domain_has_no_clock_and_no_io():
    found = [v for rel, tree in modules("domain") for v in purity_violations(rel, tree)]
    assert not found, "\n".join(f"{rel}:{line}: {what}" for rel, line, what in found)


# ---- tools, sandbox, progress -----------------------------------------------------------------------

SHARED_TOOL_MODULES = {"common", "errors"}


def tool_import_violations(rel: str, tree: ast.AST) -> list[Violation]:
    found: list[Violation] = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y / from . import x
                targets = [node.module] if node.module else [a.name for a in node.names]
            elif node.module and node.module.startswith("halo_contracts.tools."):
                targets = [node.module.split(".")[2]]
            elif node.module == "halo_contracts.tools":
                targets = [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name.split(".")[2] for a in node.names if a.name.startswith("halo_contracts.tools.")]
        for target in targets:
            if target.split(".")[0] not in SHARED_TOOL_MODULES:
                found.append((rel, node.lineno, f"imports the tool module {target}"))
    return found


def test_the_tool_import_check_catches_a_tool_importing_a_tool():
    planted = ast.parse("from halo_contracts.tools.common import app\nfrom halo_contracts.tools.prepaid import x\n"
                        "from .contracts import y\nimport halo_contracts.tools.reports\n")
    assert sorted(line for _, line, _ in tool_import_violations("tools/x.py", planted)) == [2, 3, 4]


def _tool_modules() -> list[tuple[str, ast.Module]]:
    return [(rel, tree) for rel, tree in modules("tools") if not rel.endswith("__init__.py")]


def test_no_tool_imports_another_tool():
    found = [v for rel, tree in _tool_modules() for v in tool_import_violations(rel, tree)]
    assert not found, "\n".join(f"{rel}:{line}: {what}" for rel, line, what in found)


def sandbox_import_violations(rel: str, tree: ast.AST) -> list[Violation]:
    found: list[Violation] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            outside = (node.level >= 2) or (node.level == 0 and module.startswith("halo_contracts")
                                             and not module.startswith("halo_contracts.sandbox"))
            if outside:
                found.append((rel, node.lineno, f"imports {'.' * node.level}{module}"))
        elif isinstance(node, ast.Import):
            found += [(rel, node.lineno, f"imports {a.name}") for a in node.names
                      if a.name.startswith("halo_contracts") and not a.name.startswith("halo_contracts.sandbox")]
    return found


def test_the_sandbox_check_catches_an_import_of_ours():
    planted = ast.parse("from halo_contracts.halo import wire\nfrom .store import Store\nfrom ..domain import models\n"
                        "from halo_contracts.sandbox.app import create_app\n")
    assert sorted(line for _, line, _ in sandbox_import_violations("sandbox/x.py", planted)) == [1, 3]


def test_the_sandbox_imports_nothing_of_the_rest_of_the_package():
    found = [v for rel, tree in modules("sandbox") for v in sandbox_import_violations(rel, tree)]
    assert not found, "\n".join(f"{rel}:{line}: {what}" for rel, line, what in found)


@pytest.mark.parametrize("rel", [rel for rel, _ in _tool_modules()])
def test_tools_report_progress_through_the_call_channel(rel):
    tree = parse(SRC / rel)
    direct = [node.lineno for node in ast.walk(tree)
              if isinstance(node, ast.Attribute) and node.attr == "report_progress"]
    assert not direct, f"{rel}: lines {direct} call report_progress; use progress_of(ctx).report(...)"
