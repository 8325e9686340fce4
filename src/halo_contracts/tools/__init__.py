"""Tool modules, one per capability. Importing a module declares its tools."""

from __future__ import annotations

import importlib

TOOL_MODULES = (
    "lookups",
    "contracts",
    "recurring",
    "prepaid",
    "renewals",
    "reconciliation",
    "reports",
    "licence_sync",
    "licences",
    "licence_billing",
    "charges",
    "plans",
)


def load_tool_modules() -> None:
    for name in TOOL_MODULES:
        importlib.import_module(f"{__name__}.{name}")
