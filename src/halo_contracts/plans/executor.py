"""Applying a plan: each step once, in order, through the journal.

INTERFACE FIRST (implementation in progress)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel

from halo_contracts.halo.client import HaloClient
from halo_contracts.plans.journal import Journal
from halo_contracts.plans.models import Plan

# progress(done_steps, total_steps, message)
Progress = Callable[[int, int, str], Awaitable[None]]


class ApplyOutcome(BaseModel):
    plan: Plan
    done: int
    failed: int
    skipped: int
    resumed_from: int  # index of the first step this run executed
    created: dict[str, list[int]]  # kind -> ids created by this plan


async def apply_plan(plan_id: str, *, journal: Journal, halo: HaloClient,
                     progress: Progress | None = None) -> ApplyOutcome:
    """Run every unfinished step of the plan; resume after a crash; never repeat a done step;
    settle an ``unknown`` step by looking its object up by natural key before re-sending."""
    raise NotImplementedError
