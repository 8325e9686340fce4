"""The guide as data: the core guide, its workflows and topics, and the field table.

The guidance is packaged next to this module: ``SKILL.md`` is the core guide (at most
:data:`CORE_LIMIT` bytes, so it fits a model's context cheaply); ``workflows/<name>.md`` are
the workflows, one job each; ``topics/<name>.md`` hold the reference detail (Halo's data
model, validation rules, errors). The field table is rendered at read time from the wire
mapping in ``halo_contracts.halo.wire`` so it cannot drift. Pure functions: no MCP, no I/O
beyond reading the packaged files.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

from halo_contracts.config import CodeMaps

GUIDE_FILE = "SKILL.md"
CORE_LIMIT = 10_000  # bytes: the core guide a model reads before its first write

# Workflows in the order the guide teaches them (each is workflows/<name>.md).
WORKFLOWS: tuple[str, ...] = ("setup", "change", "renewal", "prepaid", "reconciliation", "license-sync")
# Topics served as halopsa://guide/<name> (each is topics/<name>.md): name -> (title, description).
TOPICS: dict[str, tuple[str, str]] = {
    "halo-model": ("How Halo holds contracts",
                   "How Halo stores contracts, recurring lines, prepaid hours, renewals, invoices and "
                   "licences, and what Halo has no field for (setup fees, margin targets, coverage flags)."),
    "rules": ("Validation rules", "Every rule checked before anything is sent to Halo, and the tools it applies to."),
    "errors": ("Errors and what to do", "Every refusal of the tools and every Halo error, with the next step."),
}

# Kinds served by halopsa://reference/{kind}.
REFERENCE_KINDS: tuple[str, ...] = ("slas", "contract_types", "billing_periods", "statuses")

# Field tables exposed by halo/wire.py, in the order they are shown.
FIELD_TABLES: tuple[tuple[str, str], ...] = (
    ("CONTRACT_FIELDS", "Contracts"),
    ("RECURRING_ITEM_FIELDS", "Recurring lines"),
    ("LICENCE_FIELDS", "Software licences"),
)


def _read(name: str) -> str:
    return resources.files("halo_contracts.skill").joinpath(name).read_text(encoding="utf-8")


@cache
def guide_text() -> str:
    """The core guide (SKILL.md) as packaged with the wheel."""
    return _read(GUIDE_FILE)


def workflow_names() -> list[str]:
    """The workflows the guide describes, in guide order."""
    return list(WORKFLOWS)


@cache
def workflow_text(name: str) -> str | None:
    """One workflow, with a pointer back to the core guide; None if unknown."""
    if name not in WORKFLOWS:
        return None
    return (
        f"{_read(f'workflows/{name}.md').rstrip()}\n\n"
        "---\nPart of the HaloPSA contracts guide (halopsa://guide/contracts): read it first for the ground "
        "rules, contract types and statuses. Rules: halopsa://guide/rules. Errors: halopsa://guide/errors. "
        "Field names: halopsa://guide/fields.\n"
    )


@cache
def topic_text(name: str) -> str | None:
    """One topic of the guide; None if unknown."""
    return _read(f"topics/{name}.md") if name in TOPICS else None


def all_guidance_text() -> str:
    """The core guide, every workflow and every topic, in that order (what the guide teaches)."""
    parts = [guide_text(), *(workflow_text(w) or "" for w in WORKFLOWS), *(topic_text(t) or "" for t in TOPICS)]
    return "\n".join(parts)


def normalise_kind(kind: str) -> str:
    """Accept ``contract-types`` / ``Contract Types`` as well as ``contract_types``."""
    return re.sub(r"[\s-]+", "_", kind.strip().lower())


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def field_tables() -> dict[str, dict[str, dict[str, Any]]]:
    """The wire mapping tables, by name (imported at call time: wire.py owns them)."""
    from halo_contracts.halo import wire

    return {name: dict(getattr(wire, name)) for name, _title in FIELD_TABLES}


def render_field_table(codes: CodeMaps) -> str:
    """Markdown: friendly name | Halo field | note, per object, plus the codes in force."""
    tables = field_tables()
    out = [
        "# Field names: tools and Halo",
        "",
        "The tools speak the friendly names on the left; Halo stores each one in the field on the "
        "right. Generated from the server's own wire mapping, so it always matches what is sent. "
        "A tool argument not listed has no Halo field of its own: `hourly_rate` becomes `value` "
        "(hours x rate), and what Halo cannot store at all is under \"Things Halo has no field for\" "
        "in halopsa://guide/contracts.",
        "",
    ]
    for name, title in FIELD_TABLES:
        out += [f"## {title}", "", "| friendly name | Halo field | note |", "|---|---|---|"]
        for friendly, entry in tables[name].items():
            out.append(f"| `{_cell(friendly)}` | `{_cell(entry.get('halo'))}` | {_cell(entry.get('note'))} |")
        out.append("")
    out += [
        "## Codes in force",
        "",
        "Halo stores status, type and billing period as numbers that each tenant defines. This "
        "server is configured with the codes below (`halopsa-contracts-mcp doctor` prints them; "
        "halopsa://reference/{kind} compares them with the tenant's own lists).",
        "",
        "| list | code | name |",
        "|---|---|---|",
    ]
    out += [f"| status | {code} | {_cell(name)} |" for code, name in codes.statuses.items()]
    out += [f"| contract type | {code} | {_cell(name)} |" for code, name in codes.types.items()]
    out += [
        f"| billing period | {code} | {_cell(p.name)} ({p.months} month{'s' if p.months != 1 else ''}) |"
        for code, p in codes.billing_periods.items()
    ]
    return "\n".join(out) + "\n"


def parse_field_table(markdown: str) -> dict[str, dict[str, str]]:
    """Read the rendered tables back: ``{title: {friendly: halo}}`` (used by tests and doctor)."""
    result: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in markdown.splitlines():
        if line.startswith("## "):
            current = result.setdefault(line[3:].strip(), {})
            continue
        if current is None or not line.startswith("| `"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        current[cells[0].strip("`")] = cells[1].strip("`")
    return result
