"""Plans: look at a plan, apply it. The plan views, the one plan path every write tool uses
(``submit_plan``), the person's confirmation before writes (``HALO_CONFIRM_WRITES``) and plan
ownership live in :mod:`halo_contracts.tools.common`, shared by every write tool."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import Field

from halo_contracts.tools.common import (
    PLAN_ID,
    ApplyView,
    Cursor,
    Detail,
    PlanView,
    apply_view,
    apply_with_progress,
    halo_tool,
    invalid,
    load_plan,
    plan_view,
)

PlanId = Annotated[str, Field(strict=True, min_length=1, max_length=40)]


def _check_plan_id(plan_id: str) -> str:
    plan_id = plan_id.strip()
    if not PLAN_ID.match(plan_id):
        raise invalid("plan_id", f"'{plan_id}' is not a plan id", "pass the plan_id exactly as a write tool "
                      "returned it, e.g. 'plan_3f9a0c1b2d4e'")
    return plan_id


@halo_tool(group="plans", kind="read", title="Show a plan")
async def get_plan(plan_id: PlanId, ctx: Context, detail: Detail = "summary", cursor: Cursor = None) -> PlanView:
    """A saved plan, one line per step (25 a page); detail='full' adds the Halo requests, sent as shown."""
    return plan_view(load_plan(ctx, _check_plan_id(plan_id)), detail=detail, cursor=cursor)


@halo_tool(group="plans", kind="destructive", title="Apply a plan", idempotent=True)
async def apply_plan(plan_id: PlanId, ctx: Context) -> ApplyView:
    """Apply a previewed plan after the user's go-ahead. Destructive: licence-sync plans delete. Safe to
    repeat: it resumes."""
    outcome = await apply_with_progress(ctx, _check_plan_id(plan_id))
    return apply_view(outcome)
