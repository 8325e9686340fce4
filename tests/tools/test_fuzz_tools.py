"""hypothesis drives every tool with arguments generated from its own input schema.

Properties (each call):
* never a protocol error for a known tool, never the SDK's bare "Error executing tool X"
  (an unexpected exception = a bug);
* every error names a field/argument or says what to fix;
* a schema-invalid call is refused and causes ZERO requests in the sandbox log;
* write tools are called with ``dry_run=true`` and send no write (POST/DELETE) to Halo; tools
  without ``dry_run`` (``get_plan``, ``apply_plan`` on random ids, ``plan_license_sync``) never write.

Profiles: the CI profile (default, unmarked) keeps the file well under a minute; the long
profile (``pytest -m slow tests/tools/test_fuzz_tools.py`` or ``python bench/fuzz_long.py``) makes
at least 10,000 calls. ``HALO_FUZZ_VALID`` / ``HALO_FUZZ_INVALID`` / ``HALO_FUZZ_LONG`` override
the example counts; ``HALO_FUZZ_STATS=path`` writes a JSON summary of the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from support.fuzz import (
    JSON_TEXT_VALUES,
    STATS,
    Call,
    Harness,
    check_outcome,
    dump_stats,
    invalid_args,
    minimal_valid,
    schema_valid_call,
    tool_args,
    types_of,
)


def _tool_names() -> list[str]:
    try:
        from halo_contracts.tools import load_tool_modules
        from halo_contracts.tools.common import REGISTRY

        load_tool_modules()
        return sorted(REGISTRY)
    except Exception:  # surfaced by test_tool_modules_import
        return []


TOOLS = _tool_names()
N_VALID = int(os.environ.get("HALO_FUZZ_VALID", "15"))
N_INVALID = int(os.environ.get("HALO_FUZZ_INVALID", "30"))
N_LONG = int(os.environ.get("HALO_FUZZ_LONG", "11000"))

COMMON = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck), derandomize=True,
              phases=[Phase.explicit, Phase.generate, Phase.shrink])


@pytest.fixture(scope="module")
def h(tmp_path_factory) -> Harness:
    harness = Harness(Path(tmp_path_factory.mktemp("fuzz")), canary=True)
    yield harness
    harness.close()
    dump_stats()


def test_tool_modules_import():
    from halo_contracts.tools import load_tool_modules

    load_tool_modules()
    assert TOOLS


def test_every_registered_tool_is_listed(h: Harness):
    assert set(TOOLS) == set(h.tools)


def _one(h: Harness, tool: str, args: dict, mutation: str | None) -> list[str]:
    valid_call = schema_valid_call(h.schema(tool), args)
    call = Call(tool=tool, args=args, mutation=mutation, schema_valid=valid_call if mutation is None else False)
    if mutation is not None:
        assert not valid_call, f"generator produced a valid call for mutation {mutation}"
    return check_outcome(h, h.call(call))


@pytest.mark.parametrize("tool", TOOLS)
@settings(max_examples=N_VALID, **COMMON)
@given(data=st.data())
def test_valid_calls(h: Harness, tool: str, data):
    if tool not in h.tools:
        pytest.fail(f"{tool} is not listed")
    args = data.draw(tool_args(h.schema(tool), hints=h.hints, force=h.force_for(tool)), label="args")
    problems = _one(h, tool, args, None)
    assert not problems, problems


@pytest.mark.parametrize("tool", TOOLS)
@settings(max_examples=N_INVALID, **COMMON)
@given(data=st.data())
def test_invalid_calls(h: Harness, tool: str, data):
    if tool not in h.tools:
        pytest.fail(f"{tool} is not listed")
    args, why = data.draw(invalid_args(h.schema(tool), hints=h.hints, force=h.force_for(tool)), label="args")
    problems = _one(h, tool, args, why)
    assert not problems, problems


def test_unknown_tool_is_a_clear_error(h: Harness):
    outcome = h.call(Call(tool="delete_all_contracts", args={}))
    assert outcome.is_error
    assert not outcome.requests
    assert "delete_all_contracts" in outcome.text or "Unknown tool" in outcome.text


def test_wrongly_typed_ids_are_refused_without_requests(h: Harness):
    """The lax-mode traps from docs/mcp-sdk-2.3.md §1.2, on every integer argument of every tool."""
    problems: list[str] = []
    for name, tool in h.tools.items():
        props = tool.input_schema.get("properties", {})
        for key, sub in props.items():
            types = types_of(sub) | {t for b in sub.get("anyOf", []) for t in types_of(b)}
            if "integer" not in types:
                continue
            for bad in ("1", True, 1.0):
                base = {k: v for k, v in h.force_for(name).items()}
                args = {**base, key: bad}
                outcome = h.call(Call(tool=name, args=args, mutation=f"{key}={bad!r}", schema_valid=False))
                if not outcome.is_error or outcome.requests:
                    problems.append(f"{name}.{key}={bad!r}: is_error={outcome.is_error}, "
                                    f"{len(outcome.requests)} request(s): {outcome.text[:200]}")
    assert not problems, problems


def _json_text_cases(h: Harness) -> list[tuple[str, str, str]]:
    cases = []
    for name, tool in sorted(h.tools.items()):
        schema = tool.input_schema
        for key, sub in schema.get("properties", {}).items():
            branches = sub.get("anyOf", [sub])
            if any("string" in types_of(b) for b in branches):
                continue
            for text in JSON_TEXT_VALUES:
                cases.append((name, key, text))
    return cases


def test_json_text_for_non_string_arguments_is_refused(h: Harness):
    """'null', '[1001]', '{"a": 1}' given where the schema allows no string: refused, nothing sent.

    The SDK json-decodes such strings before validation (func_metadata.pre_parse_json), so
    without a guard ``"client_id": "null"`` silently becomes "no client filter" and
    ``"contract_ids": "[1001]"`` a list: a wrongly typed call that runs anyway."""
    problems: list[str] = []
    for name, key, text in _json_text_cases(h):
        args = minimal_valid(h.schema(name), hints=h.hints)
        args.update(h.force_for(name))
        args[key] = text
        outcome = h.call(Call(tool=name, args=args, mutation=f"{key}={text!r}", schema_valid=False))
        if not outcome.is_error or outcome.requests:
            problems.append(f"{name}({key}={text!r}): is_error={outcome.is_error}, {len(outcome.requests)} request(s)")
    assert not problems, f"{len(problems)} wrongly typed call(s) accepted:\n" + "\n".join(problems)


@pytest.mark.slow
@settings(max_examples=N_LONG, **{**COMMON, "derandomize": False})
@given(data=st.data())
def test_long_profile(h: Harness, data):
    """At least 10,000 calls over the whole surface; violations are collected, not stopped at."""
    tool = data.draw(st.sampled_from(sorted(h.tools)), label="tool")
    if data.draw(st.booleans(), label="valid"):
        args = data.draw(tool_args(h.schema(tool), hints=h.hints, force=h.force_for(tool)), label="args")
        _one(h, tool, args, None)
    else:
        args, why = data.draw(invalid_args(h.schema(tool), hints=h.hints, force=h.force_for(tool)), label="args")
        _one(h, tool, args, why)


def test_no_secret_in_any_result_log_or_journal(h: Harness):
    """Runs after the generated calls of this module (same harness, canary secret and tokens):
    no result and no log record contained them (checked call by call), nor does the journal file."""
    assert len(h.secrets) >= 2, "no token was issued: the run never reached Halo"
    assert h.secret_watch is not None and h.secret_watch.records > 0
    leaks = [f for f in STATS.failures if "secret" in f]
    for path in sorted(h.journal_path.parent.glob(h.journal_path.name + "*")):
        if h.leaks_in(path.read_bytes().decode("latin-1")):
            leaks.append(f"journal file {path.name} contains a secret")
    assert not leaks, leaks[:10]


@pytest.mark.slow
def test_long_profile_found_nothing(h: Harness):
    """Runs after test_long_profile (same module fixture): report every distinct violation."""
    dump_stats()
    unique = sorted(set(STATS.failures))
    assert not unique, f"{len(unique)} distinct violation(s) in {STATS.calls} calls:\n" + "\n".join(unique[:40])
