"""Three server processes share one PostgreSQL journal, one sandbox and Halo's one budget.

A renewal plan and a licence-sync plan are previewed on one replica each and applied at the
same time by the two others (bench/replicas.py runs the full 100 renewals / 300 licences).
Must hold: nothing duplicated or missing, the journal matches Halo, no 429, and the sandbox
never receives more than the budget in any rolling window.
"""

from __future__ import annotations

import pytest

from support import replicas

pytestmark = pytest.mark.e2e


def test_three_replicas_share_plans_and_one_budget(tmp_path, pg_url):
    report = replicas.run(tmp_path, pg_url, renewals=12, licence_lines=40, limit=40, window=3.0,
                          contracts=120, clients=25, timeout=300)
    print(report)
    assert not report.problems, "\n".join(report.problems)
    assert not report.errors, "\n".join(report.errors)
    assert report.rate_limited == 0
    assert report.max_in_window <= report.limit
    # the budget was the limit, not the work: more requests than one window holds
    assert report.requests > 2 * report.limit, report
    assert report.steps["renewal"] >= 12 and report.steps["licence"] >= 40
    for plan_id, who in report.previewed_on.items():
        assert report.appliers.get(plan_id), f"no replica sent a step of {plan_id}"
        assert who not in report.appliers[plan_id]
