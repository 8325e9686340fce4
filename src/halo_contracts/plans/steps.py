"""Step handlers: how each ``StepKind`` is sent to Halo and how its object is found again.

Each handler knows three things about its kind of step:

- ``send(halo, params)``: call the HaloClient write method and summarise the answer as a
  small JSON dict (``{"id": ...}``; lines: ``{"ids": [...]}``);
- ``settle(halo, params, natural_key)``: after a lost answer (step left ``sending`` or
  ``unknown``), look the object up by its natural key and say whether the step already took
  effect (``Settlement.result``) and what, if anything, still has to be sent
  (``Settlement.resend``). Creates look up by natural key; updates are idempotent (the same
  fields are simply sent again); deletes are done when the object is gone;
- ``preview(halo, params)``: the Halo request the step sends (``HaloClient.preview_request``).

Params are the JSON form stored in the journal (see ``plans.models.StepKind``); the
``*Fields`` drafts are rebuilt from them with ``model_validate`` so ``given()`` is exactly
the set of keys stored.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from halo_contracts.domain.charges import ChargeDraft, charge_key
from halo_contracts.domain.drafts import ContractFields, LicenceFields, RecurringItemFields
from halo_contracts.halo.client import ContractQuery, HaloClient
from halo_contracts.halo.errors import HaloNotFound
from halo_contracts.plans.models import ParamRef, Plan, Step, StepKind, StepRef


@dataclass
class Settlement:
    """What a lookup by natural key found.

    ``result``: the part of the step that is already in Halo (None: nothing found).
    ``resend``: params still to send (None: nothing; the step is done with ``result``)."""

    result: dict[str, Any] | None
    resend: dict[str, Any] | None
    note: str = ""


@dataclass(frozen=True)
class StepHandler:
    kind: StepKind
    operation: str  # the HaloClient write method
    creates: str | None  # what kind of object the step creates (ApplyOutcome.created key)
    send: Callable[[HaloClient, dict[str, Any]], Awaitable[dict[str, Any]]]
    settle: Callable[[HaloClient, dict[str, Any], dict[str, Any]], Awaitable[Settlement]]
    args: Callable[[dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]
    merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] = field(
        default=lambda old, new: {**old, **new})
    # Checked before a step is first sent: a reason not to send it (e.g. the object already
    # exists, created by someone else after the plan was built), or None.
    guard: Callable[[HaloClient, dict[str, Any], dict[str, Any]], Awaitable[str | None]] | None = None
    # Checked before a step is sent (not when settling a lost answer): an object that already
    # does what the step would create (made after the plan was built, e.g. by another plan),
    # to be used instead of creating a second one: ``Settlement(result, None, note)``, or None.
    reuse: Callable[[HaloClient, dict[str, Any], dict[str, Any]], Awaitable[Settlement | None]] | None = None
    # The object the step's check-then-send is about (e.g. "one recurring invoice per
    # contract"): steps with the same key are run one at a time in this process, so two plans
    # applied at once cannot both pass the check and both create.
    lock_key: Callable[[dict[str, Any], dict[str, Any]], str | None] | None = None


def _same_text(a: str | None, b: str | None) -> bool:
    return " ".join((a or "").split()).casefold() == " ".join((b or "").split()).casefold()


# ---- contracts ---------------------------------------------------------------------------------


def _contract_result(c: Any) -> dict[str, Any]:
    return {"id": c.id, "ref": c.ref, "client_id": c.client_id}


def _create_contract_args(p: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (ContractFields.model_validate(p["fields"]),), {}


async def _create_contract(halo: HaloClient, p: dict[str, Any]) -> dict[str, Any]:
    args, kwargs = _create_contract_args(p)
    return _contract_result(await halo.create_contract(*args, **kwargs))


async def find_contract(halo: HaloClient, client_id: int, ref: str) -> Any | None:
    """The contract of ``client_id`` whose ref is ``ref`` (trimmed, case-insensitive), if any;
    inactive ones included. Reads the client's contracts and compares refs here rather than
    trusting Halo's free-text ``search`` (whose matching rules are Halo's own)."""
    rows = await halo.list_contracts(ContractQuery(client_id=client_id, include_inactive=True))
    return match_contract(rows, client_id, ref)


def match_contract(rows: list[Any], client_id: int, ref: str) -> Any | None:
    """The contract of ``client_id`` among ``rows`` whose ref is ``ref`` (as ``find_contract``)."""
    return next((c for c in rows if c.client_id == client_id and _same_text(c.ref, ref)), None)


async def _settle_create_contract(halo: HaloClient, p: dict[str, Any], key: dict[str, Any]) -> Settlement:
    client_id = key.get("client_id", p["fields"].get("client_id"))
    ref = key.get("ref", p["fields"].get("ref"))
    found = await find_contract(halo, int(client_id), str(ref))
    if found is not None:
        return Settlement(_contract_result(found), None, f"found contract {found.id} by client and ref")
    return Settlement(None, p, "not found by client and ref; sent again")


async def _guard_create_contract(halo: HaloClient, p: dict[str, Any], key: dict[str, Any]) -> str | None:
    """The duplicate guard at apply time: the plan may be older than a contract with the same
    client and ref (e.g. a second plan for the same contract applied first)."""
    client_id = int(key.get("client_id", p["fields"].get("client_id")))
    ref = str(key.get("ref", p["fields"].get("ref")))
    found = await find_contract(halo, client_id, ref)
    if found is None:
        return None
    return (f"client {client_id} already has contract {found.id} with this ref (it appeared after the plan was "
            f"built); nothing was sent. Change contract {found.id} with update_contract, or plan again with "
            "another ref")


def _contract_lock(p: dict[str, Any], key: dict[str, Any]) -> str | None:
    client_id = key.get("client_id", p["fields"].get("client_id"))
    ref = " ".join(str(key.get("ref", p["fields"].get("ref")) or "").split()).casefold()
    return f"contract:{client_id}:{ref}"


def _update_contract_args(p: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (int(p["contract_id"]), ContractFields.model_validate(p["fields"])), {}


async def _update_contract(halo: HaloClient, p: dict[str, Any]) -> dict[str, Any]:
    args, kwargs = _update_contract_args(p)
    return _contract_result(await halo.update_contract(*args, **kwargs))


async def _resend(halo: HaloClient, p: dict[str, Any], key: dict[str, Any]) -> Settlement:
    return Settlement(None, p, "an update is idempotent: the same fields were sent again")


# ---- recurring invoices and lines ---------------------------------------------------------


def _create_ri_args(p: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The header and its schedule (frequency, start, end: the client reads the contract for
    any not in the plan)."""
    schedule = {name: (date.fromisoformat(p[name]) if name.endswith("date") else p[name])
                for name in ("billing_frequency", "start_date", "end_date") if p.get(name)}
    return (), {"client_id": int(p["client_id"]), "contract_id": int(p["contract_id"]),
                "contract_ref": p.get("contract_ref"), **schedule}


async def _create_ri(halo: HaloClient, p: dict[str, Any]) -> dict[str, Any]:
    args, kwargs = _create_ri_args(p)
    ri = await halo.create_recurring_invoice(*args, **kwargs)
    return {"id": ri.id, "contract_id": ri.contract_id}


def _header_of(invoices: list[Any], contract_id: int, frequency: str | None) -> Any | None:
    """The contract's recurring invoice a create of ``frequency`` stands for: the first of that
    frequency (a header with no period takes every line, as ``add_recurring_lines`` routes);
    with no frequency asked, the contract's first."""
    mine = [ri for ri in invoices if ri.contract_id == contract_id]
    if frequency is None:
        return mine[0] if mine else None
    return next((ri for ri in mine if _same_text(ri.billing_frequency, frequency)), None) \
        or next((ri for ri in mine if ri.billing_frequency is None), None)


async def _settle_create_ri(halo: HaloClient, p: dict[str, Any], key: dict[str, Any]) -> Settlement:
    contract_id = int(key.get("contract_id", p["contract_id"]))
    invoices = await halo.list_recurring_invoices(contract_id=contract_id, include_lines=False)
    ri = _header_of(invoices, contract_id, p.get("billing_frequency"))
    if ri is not None:
        return Settlement({"id": ri.id, "contract_id": ri.contract_id}, None,
                          f"found recurring invoice {ri.id} of contract {contract_id}")
    return Settlement(None, p, "no recurring invoice found for the contract; sent again")


async def _reuse_ri(halo: HaloClient, p: dict[str, Any], key: dict[str, Any]) -> Settlement | None:
    """A contract has one recurring invoice per billing frequency. The plan was built when the
    contract had none of this step's frequency; if one exists now (another plan, or someone in
    Halo, made it since), the step uses it: the plan's later references to this step's id then
    point to it and its lines go there, instead of a second recurring invoice billing the same
    contract at the same frequency."""
    contract_id = int(key.get("contract_id", p["contract_id"]))
    invoices = await halo.list_recurring_invoices(contract_id=contract_id, include_lines=False)
    ri = _header_of(invoices, contract_id, p.get("billing_frequency"))
    if ri is None:
        return None
    return Settlement({"id": ri.id, "contract_id": ri.contract_id, "reused": True}, None,
                      f"reused recurring invoice {ri.id} created after the plan was built")


def _ri_lock(p: dict[str, Any], key: dict[str, Any]) -> str | None:
    return f"recurring_invoice:contract:{key.get('contract_id', p.get('contract_id'))}"


def _add_lines_args(p: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    items = [RecurringItemFields.model_validate(i) for i in p["items"]]
    # the header's frequency when the plan knows it (it makes the header, or read it): no read first
    known = {"header_frequency": p["header_frequency"]} if p.get("header_frequency") else {}
    return (int(p["recurring_invoice_id"]), int(p["contract_id"]), items), known


async def _add_lines(halo: HaloClient, p: dict[str, Any]) -> dict[str, Any]:
    args, kwargs = _add_lines_args(p)
    lines = await halo.add_recurring_lines(*args, **kwargs)
    ids = [line.id for line in lines if line.id is not None]
    return {"ids": ids, "id": ids[0] if ids else None}


async def _settle_add_lines(halo: HaloClient, p: dict[str, Any], key: dict[str, Any]) -> Settlement:
    """Lines are found by contract + description among lines that did not exist when the
    plan was built (``natural_key["existing_line_ids"]``). Items already stored are not
    sent again; the rest are."""
    contract_id = int(key.get("contract_id", p["contract_id"]))
    existing = set(key.get("existing_line_ids") or [])
    invoices = await halo.list_recurring_invoices(contract_id=contract_id, include_lines=True)
    if p.get("header_frequency"):  # the lines were sent to this header only
        invoices = [ri for ri in invoices if ri.id == int(p["recurring_invoice_id"])]
    candidates = [line for ri in invoices for line in ri.lines
                  if line.id is not None and line.id not in existing]
    found_ids: list[int] = []
    missing: list[dict[str, Any]] = []
    for item in p["items"]:
        match = next((line for line in candidates if _same_text(line.description, item.get("description"))), None)
        if match is None:
            missing.append(item)
        else:
            candidates.remove(match)
            found_ids.append(match.id)
    result = {"ids": found_ids, "id": found_ids[0] if found_ids else None} if found_ids else None
    if not missing:
        return Settlement(result, None, f"found all {len(found_ids)} line(s) by contract and description")
    note = (f"found {len(found_ids)} of {len(p['items'])} line(s) by contract and description; sent the rest"
            if found_ids else "no line found by contract and description; sent again")
    return Settlement(result, {**p, "items": missing}, note)


def _merge_lines(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    ids = list(old.get("ids") or []) + list(new.get("ids") or [])
    return {"ids": ids, "id": ids[0] if ids else None}


def _update_line_args(p: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (int(p["line_id"]), int(p["recurring_invoice_id"]), RecurringItemFields.model_validate(p["fields"])), {}


async def _update_line(halo: HaloClient, p: dict[str, Any]) -> dict[str, Any]:
    args, kwargs = _update_line_args(p)
    line = await halo.update_recurring_line(*args, **kwargs)
    return {"id": line.id if line.id is not None else int(p["line_id"])}


# ---- licences ----------------------------------------------------------------------------------


def _licence_result(lic: Any) -> dict[str, Any]:
    return {"id": lic.id, "client_id": lic.client_id, "product_code": lic.product_code}


def _create_licence_args(p: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (LicenceFields.model_validate(p["fields"]),), {}


async def _create_licence(halo: HaloClient, p: dict[str, Any]) -> dict[str, Any]:
    args, kwargs = _create_licence_args(p)
    return _licence_result(await halo.create_licence(*args, **kwargs))


async def _settle_create_licence(halo: HaloClient, p: dict[str, Any], key: dict[str, Any]) -> Settlement:
    client_id = int(key.get("client_id", p["fields"].get("client_id")))
    code = key.get("product_code", p["fields"].get("product_code"))
    distributor = p["fields"].get("distributor")
    for lic in await halo.list_licences(client_id=client_id):
        if lic.client_id not in (None, client_id) or not _same_text(lic.product_code, code):
            continue
        # a licence of another distributor with the same product code is not the one we sent
        if distributor and not _same_text(lic.distributor, distributor):
            continue
        return Settlement(_licence_result(lic), None, f"found licence {lic.id} by client and product code")
    return Settlement(None, p, "not found by client and product code; sent again")


def _update_licence_args(p: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (int(p["licence_id"]), LicenceFields.model_validate(p["fields"])), {}


async def _update_licence(halo: HaloClient, p: dict[str, Any]) -> dict[str, Any]:
    args, kwargs = _update_licence_args(p)
    return _licence_result(await halo.update_licence(*args, **kwargs))


def _delete_licence_args(p: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (int(p["licence_id"]),), {}


async def _delete_licence(halo: HaloClient, p: dict[str, Any]) -> dict[str, Any]:
    await halo.delete_licence(int(p["licence_id"]))
    return {"id": int(p["licence_id"]), "deleted": True}


async def _settle_delete_licence(halo: HaloClient, p: dict[str, Any], key: dict[str, Any]) -> Settlement:
    """Done when the licence is gone (natural key ``client_id`` narrows the read)."""
    licence_id = int(p["licence_id"])
    client_id = key.get("client_id")
    rows = await halo.list_licences(client_id=int(client_id) if client_id is not None else None)
    if all(lic.id != licence_id for lic in rows):
        return Settlement({"id": licence_id, "deleted": True}, None, f"licence {licence_id} is already gone")
    return Settlement(None, p, f"licence {licence_id} still exists; delete sent again")


# ---- distributor charges -----------------------------------------------------------------------
# A charge's natural key is its product code and period (domain.charges.charge_key). Each step's
# natural key holds how many lines of each key its invoice (a new invoice: the client's open
# invoices) had when the plan was built (``held``); a line counts as added once Halo holds more.


def _drafts(p: dict[str, Any]) -> list[ChargeDraft]:
    return [ChargeDraft.model_validate(line) for line in p["lines"]]


def _keys_of(lines: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in lines:
        k = charge_key(line.product_code or "", line.start_date, line.end_date)
        counts[k] = counts.get(k, 0) + 1
    return counts


async def _charges_now(halo: HaloClient, kind: str, p: dict[str, Any], key: dict[str, Any]) -> tuple[dict[str, int],
                                                                                                   bool]:
    """(key -> lines Halo holds now on the step's invoice, or the client's open invoices for a
    new one; whether that invoice is posted)."""
    if kind == "add_invoice_lines":
        invoice = await halo.get_invoice(int(p["invoice_id"]))
        return _keys_of(invoice.lines), bool(invoice.posted)
    if kind == "add_recurring_charges":
        return _keys_of((await halo.get_recurring_invoice(int(p["recurring_invoice_id"]))).lines), False
    invoices = await halo.list_invoices(client_id=int(key.get("client_id", p["client_id"])), not_posted_only=True)
    return _keys_of([line for i in invoices for line in i.lines]), False


def _added(p: dict[str, Any], key: dict[str, Any], now: dict[str, int]) -> tuple[list[dict[str, Any]],
                                                                                  list[dict[str, Any]]]:
    """(lines Halo holds beyond what it held at plan time, lines still missing)."""
    spare = {k: now.get(k, 0) - int(n) for k, n in (key.get("held") or {}).items()}
    for k, n in now.items():
        spare.setdefault(k, n)
    found: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    for line, draft in zip(p["lines"], _drafts(p), strict=True):
        if spare.get(draft.key, 0) > 0:
            spare[draft.key] -= 1
            found.append(line)
        else:
            missing.append(line)
    return found, missing


def _charge_guard(kind: str) -> Callable[[HaloClient, dict[str, Any], dict[str, Any]], Awaitable[str | None]]:
    async def guard(halo: HaloClient, p: dict[str, Any], key: dict[str, Any]) -> str | None:
        """The re-import guard at apply time: the charges must not have reached Halo since the
        plan was built (another import applied first), and an invoice must still be open."""
        now, posted = await _charges_now(halo, kind, p, key)
        if posted:
            return (f"invoice {p['invoice_id']} was posted after the plan was built; nothing was sent. Plan the "
                    "charges again (target a new invoice)")
        found, _missing = _added(p, key, now)
        if found:
            return (f"{len(found)} of these {len(p['lines'])} charge line(s) are already in Halo (same product and "
                    "period, added after the plan was built); nothing was sent. Plan the import again")
        return None
    return guard


def _charge_settle(kind: str) -> Callable[[HaloClient, dict[str, Any], dict[str, Any]], Awaitable[Settlement]]:
    async def settle(halo: HaloClient, p: dict[str, Any], key: dict[str, Any]) -> Settlement:
        """Lines are found by product and period beyond what the invoice held at plan time;
        the ones found are not sent again."""
        if kind == "create_invoice":
            found_invoice = await halo.find_charge_invoice(int(key.get("client_id", p["client_id"])), _drafts(p),
                                                           exclude=list(key.get("existing_invoice_ids") or []))
            if found_invoice is not None:
                return Settlement({"id": found_invoice.id, "lines": len(p["lines"])}, None,
                                  f"found invoice {found_invoice.id} holding the lines by product and period")
            return Settlement(None, p, "no new invoice holds the lines; sent again")
        now, _posted = await _charges_now(halo, kind, p, key)
        found, missing = _added(p, key, now)
        target = p.get("invoice_id", p.get("recurring_invoice_id"))
        result = {"id": target, "lines": len(found)} if found else None
        if not missing:
            return Settlement(result, None, f"found all {len(found)} line(s) by product and period")
        return Settlement(result, {**p, "lines": missing},
                          f"found {len(found)} of {len(p['lines'])} line(s) by product and period; sent the rest")
    return settle


def _create_invoice_args(p: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (int(p["client_id"]), date.fromisoformat(p["invoice_date"]), _drafts(p)), {}


async def _create_invoice(halo: HaloClient, p: dict[str, Any]) -> dict[str, Any]:
    invoice = await halo.create_invoice(*_create_invoice_args(p)[0])
    return {"id": invoice.id, "lines": len(p["lines"])}


def _add_invoice_lines_args(p: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (int(p["invoice_id"]), _drafts(p)), {}


async def _add_invoice_lines(halo: HaloClient, p: dict[str, Any]) -> dict[str, Any]:
    invoice = await halo.add_invoice_lines(*_add_invoice_lines_args(p)[0])
    return {"id": invoice.id, "lines": len(p["lines"])}


def _add_recurring_charges_args(p: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (int(p["recurring_invoice_id"]), _drafts(p)), {}


async def _add_recurring_charges(halo: HaloClient, p: dict[str, Any]) -> dict[str, Any]:
    ri = await halo.add_recurring_charges(*_add_recurring_charges_args(p)[0])
    return {"id": ri.id, "lines": len(p["lines"])}


def _merge_charge_lines(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {"id": new.get("id", old.get("id")), "lines": int(old.get("lines") or 0) + int(new.get("lines") or 0)}


def _charge_lock(p: dict[str, Any], key: dict[str, Any]) -> str | None:
    return f"charges:client:{key.get('client_id', p.get('client_id'))}"


# ---- deletes of verify's own records (no tool deletes a contract or a recurring invoice) -----------


def _delete_contract_args(p: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (int(p["contract_id"]),), {}


async def _delete_contract(halo: HaloClient, p: dict[str, Any]) -> dict[str, Any]:
    await halo.delete_contract(int(p["contract_id"]))
    return {"id": int(p["contract_id"]), "deleted": True}


async def _settle_delete_contract(halo: HaloClient, p: dict[str, Any], key: dict[str, Any]) -> Settlement:
    contract_id = int(p["contract_id"])
    try:
        await halo.get_contract(contract_id, details=False)
    except HaloNotFound:
        return Settlement({"id": contract_id, "deleted": True}, None, f"contract {contract_id} is already gone")
    return Settlement(None, p, f"contract {contract_id} still exists; delete sent again")


def _delete_ri_args(p: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (int(p["recurring_invoice_id"]),), {}


async def _delete_ri(halo: HaloClient, p: dict[str, Any]) -> dict[str, Any]:
    await halo.delete_recurring_invoice(int(p["recurring_invoice_id"]))
    return {"id": int(p["recurring_invoice_id"]), "deleted": True}


async def _settle_delete_ri(halo: HaloClient, p: dict[str, Any], key: dict[str, Any]) -> Settlement:
    ri_id = int(p["recurring_invoice_id"])
    try:
        await halo.get_recurring_invoice(ri_id)
    except HaloNotFound:
        return Settlement({"id": ri_id, "deleted": True}, None, f"recurring invoice {ri_id} is already gone")
    return Settlement(None, p, f"recurring invoice {ri_id} still exists; delete sent again")


def deleted_id(kind: str, params: dict[str, Any]) -> Any:
    """The id a delete step removes."""
    name = {"delete_licence": "licence_id", "delete_contract": "contract_id",
            "delete_recurring_invoice": "recurring_invoice_id"}.get(kind)
    return params.get(name) if name else None


HANDLERS: dict[str, StepHandler] = {
    h.kind: h
    for h in (
        StepHandler("create_contract", "create_contract", "contract", _create_contract, _settle_create_contract,
                    _create_contract_args, guard=_guard_create_contract, lock_key=_contract_lock),
        StepHandler("update_contract", "update_contract", None, _update_contract, _resend, _update_contract_args),
        StepHandler("create_recurring_invoice", "create_recurring_invoice", "recurring_invoice", _create_ri,
                    _settle_create_ri, _create_ri_args, reuse=_reuse_ri, lock_key=_ri_lock),
        StepHandler("add_recurring_lines", "add_recurring_lines", "recurring_item", _add_lines, _settle_add_lines,
                    _add_lines_args, _merge_lines),
        StepHandler("update_recurring_line", "update_recurring_line", None, _update_line, _resend,
                    _update_line_args),
        StepHandler("create_licence", "create_licence", "licence", _create_licence, _settle_create_licence,
                    _create_licence_args),
        StepHandler("update_licence", "update_licence", None, _update_licence, _resend, _update_licence_args),
        StepHandler("delete_licence", "delete_licence", None, _delete_licence, _settle_delete_licence,
                    _delete_licence_args),
        StepHandler("create_invoice", "create_invoice", "invoice", _create_invoice, _charge_settle("create_invoice"),
                    _create_invoice_args, guard=_charge_guard("create_invoice"), lock_key=_charge_lock),
        StepHandler("add_invoice_lines", "add_invoice_lines", None, _add_invoice_lines,
                    _charge_settle("add_invoice_lines"), _add_invoice_lines_args, _merge_charge_lines,
                    guard=_charge_guard("add_invoice_lines"), lock_key=_charge_lock),
        StepHandler("add_recurring_charges", "add_recurring_charges", None, _add_recurring_charges,
                    _charge_settle("add_recurring_charges"), _add_recurring_charges_args, _merge_charge_lines,
                    guard=_charge_guard("add_recurring_charges"), lock_key=_charge_lock),
        StepHandler("delete_recurring_invoice", "delete_recurring_invoice", None, _delete_ri, _settle_delete_ri,
                    _delete_ri_args),
        StepHandler("delete_contract", "delete_contract", None, _delete_contract, _settle_delete_contract,
                    _delete_contract_args),
    )
}


def is_delete(kind: str) -> bool:
    return kind.startswith("delete_")


# ---- references -----------------------------------------------------------------------------


class UnresolvedReference(ValueError):
    """A step needs the id of an earlier step that has no such result (yet)."""


def references(step: Step) -> set[int]:
    """Indexes of the earlier steps ``step`` needs the results of (its ``refs``)."""
    return step.depends_on()


def _put(parts: dict[str, Any], ref: ParamRef, value: int) -> None:
    where: Any = parts
    try:
        for key in ref.path[:-1]:
            where = where[key]
        if where[ref.path[-1]] != ref.placeholder:
            raise KeyError(ref.path[-1])
        where[ref.path[-1]] = value
    except (KeyError, IndexError, TypeError) as exc:
        raise UnresolvedReference(f"the place of step {ref.step + 1}'s {ref.field} in this step is missing "
                                  f"({'/'.join(map(str, ref.path))})") from exc


def resolve(step: Step, results: dict[int, dict[str, Any] | None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The step's params and natural key with each ``refs`` place set to that field of the
    earlier step's result. Only those places change: every other value, text included, is
    returned as it is."""
    parts = {"params": copy.deepcopy(step.params), "natural_key": copy.deepcopy(step.natural_key)}
    for ref in step.refs:
        value = (results.get(ref.step) or {}).get(ref.field)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UnresolvedReference(f"step {ref.step + 1} has no {ref.field} in its result")
        _put(parts, ref, value)
    return parts["params"], parts["natural_key"]


# ---- previews ---------------------------------------------------------------------------------


def preview(halo: HaloClient, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The Halo request a step with these params sends. Before the step runs, the id of an
    earlier step shows as its placeholder (``plans.models.placeholder``)."""
    handler = HANDLERS[kind]
    args, kwargs = handler.args(params)
    return halo.preview_request(handler.operation, *args, **kwargs)


def add_step(plan: Plan, halo: HaloClient, kind: StepKind, summary: str, params: dict[str, Any], *,
             natural_key: dict[str, Any] | None = None, group: str | None = None) -> Step:
    """``plan.add`` with the Halo request preview filled in (nothing is sent). ``params`` and
    ``natural_key`` may hold ``Plan.ref(n)`` where step n's id goes."""
    step = plan.add(kind, summary, params, natural_key=natural_key, group=group)
    try:
        step.request = preview(halo, kind, step.params)
    except Exception:
        plan.steps.pop()
        raise
    return step


# ---- recurring lines: one recurring invoice per billing frequency ------------------------------


@dataclass
class LineTarget:
    """Where a group of lines goes: the recurring invoice of ``frequency`` (an existing id, or
    the ``create`` step's ref when the plan makes it) and the ``add`` step that sends them."""

    frequency: str | None
    items: list[RecurringItemFields]
    header: int | StepRef | None  # None: the contract has none of this frequency yet
    create: Step | None = None
    add: Step | None = None


def route_lines(items: list[RecurringItemFields], headers: list[Any],
                default_frequency: str | None) -> list[LineTarget]:
    """Group ``items`` by the frequency they bill at (their own, else ``default_frequency``)
    and give each group the contract's recurring invoice of that frequency from ``headers``
    (``RecurringInvoice``s read at plan time): the first of that frequency, else one with no
    period (it takes every line), else, when no frequency is known, the first. A group with
    none gets ``header=None`` (the plan makes one; recurring invoice ids may be negative)."""
    groups: dict[str, LineTarget] = {}
    for item in items:
        frequency = item.billing_frequency or default_frequency
        key = (frequency or "").casefold()
        if key not in groups:
            groups[key] = LineTarget(frequency, [], _header_id(headers, frequency))
        groups[key].items.append(item)
    return list(groups.values())


def _header_id(headers: list[Any], frequency: str | None) -> int | None:
    if frequency is None:
        return headers[0].id if headers else None
    found = next((h for h in headers if _same_text(h.billing_frequency, frequency)), None) \
        or next((h for h in headers if h.billing_frequency is None), None)
    return found.id if found is not None else None


def add_line_steps(plan: Plan, halo: HaloClient, targets: list[LineTarget], *, client_id: int | None,
                   contract_id: int | StepRef, contract_ref: str | None, schedule: dict[str, Any],
                   natural_key: dict[str, Any], owner: str, what: Callable[[LineTarget], str],
                   group: str | None = None) -> list[LineTarget]:
    """For each target: a ``create_recurring_invoice`` step of its frequency when the contract
    has none (``schedule``: the start and end dates it gets), then one ``add_recurring_lines``
    step aimed at it, carrying the header's frequency so nothing is read before the lines are
    sent. ``owner`` names the contract in the create's summary ("contract 12"), ``what(target)``
    is the add step's summary."""
    for t in targets:
        if t.header is None:
            named = f"the {t.frequency} recurring invoice" if t.frequency else "the recurring invoice"
            t.create = add_step(plan, halo, "create_recurring_invoice",
                                f"Create {named} of {owner}",
                                {"client_id": client_id, "contract_id": contract_id, "contract_ref": contract_ref,
                                 **({"billing_frequency": t.frequency} if t.frequency else {}), **schedule},
                                natural_key={"contract_id": contract_id}, group=group)
            t.header = Plan.ref(t.create.index)
        t.add = add_step(plan, halo, "add_recurring_lines", what(t),
                         {"recurring_invoice_id": t.header, "contract_id": contract_id,
                          "items": [f.model_dump(mode="json", exclude_unset=True) for f in t.items],
                          **({"header_frequency": t.frequency} if t.frequency else {})},
                         natural_key=natural_key, group=group)
    return targets
