"""Every HaloClient method sends requests that Halo's OpenAPI slices allow.

Each request is checked against both slices (tests/support/spec.py); the 2026 one decides,
and the places where only the 2024 one objects are pinned below (OLDER_ONLY).

The client is driven through ``SpecCheckingTransport`` (tests/support/spec.py) twice: over
the fake Halo (fast, fully scripted) and over the embedded sandbox (an independent
emulator). Each run calls EVERY public client method, reads and writes, and must leave zero
violations (path, method, query names and types, body property names and types).
"""

from __future__ import annotations

import inspect
from datetime import date
from decimal import Decimal

import httpx2
import pytest

from halo_contracts.domain.charges import ChargeDraft
from halo_contracts.domain.drafts import ContractFields, LicenceFields, RecurringItemFields
from halo_contracts.halo.client import ContractQuery, HaloClient
from support.fakehalo import FAST, FakeHalo, fake_contract, fake_settings, roomy_budget
from support.spec import SpecCheckingTransport, check_request, load_spec

pytestmark = pytest.mark.anyio

PUBLIC_METHODS = sorted(
    name for name, member in inspect.getmembers(HaloClient, inspect.iscoroutinefunction)
    if not name.startswith("_") and name != "aclose"
)


async def exercise_every_method(halo: HaloClient, *, client_id: int, called: set[str]) -> None:
    """Call each public method once with realistic arguments (writes included)."""

    async def call(name: str, *args, **kwargs):
        called.add(name)
        return await getattr(halo, name)(*args, **kwargs)

    await call("authenticate")
    for probe in HaloClient.PROBES:  # doctor's one-request probes
        await call("probe", probe)
    await call("list_clients", search="a", include_inactive=True)
    await call("get_client", client_id)
    await call("list_slas")
    await call("get_lookup", halo.settings.lookup_status_id)
    await call("list_contracts", ContractQuery(client_id=client_id, search="", include_inactive=True,
                                               exclude_renewed=True))
    created = await call("create_contract", ContractFields(
        client_id=client_id, ref="SPEC-CHECK-1", type="Recurring", status="Active",
        start_date=date(2026, 1, 1), end_date=date(2026, 12, 31), billing_frequency="Monthly",
        value=Decimal("100.00"), notes="spec check", term_months=12, prepay_expiry_months=12,
        prepaid_hours=Decimal("0")))
    await call("update_contract", created.id, ContractFields(value=Decimal("120.50"), notes="changed"))
    await call("get_contract", created.id)
    await call("get_contract", created.id, details=False)
    header = await call("create_recurring_invoice", client_id=client_id, contract_id=created.id,
                        contract_ref=created.ref)
    lines = await call("add_recurring_lines", header.id, created.id, [
        RecurringItemFields(description="Managed seat", long_description="per user", quantity=Decimal(3),
                            unit_price=Decimal("45.50"), billing_frequency="Monthly",
                            start_date=date(2026, 1, 1), end_date=date(2026, 12, 31)),
        RecurringItemFields(description="Annual audit", quantity=Decimal(1), unit_price=Decimal("600"),
                            billing_frequency="Annual"),  # goes to the contract's Annual recurring invoice
    ])
    await call("update_recurring_line", lines[0].id, header.id, RecurringItemFields(quantity=Decimal(4)))
    await call("get_recurring_invoice", header.id)
    await call("list_recurring_invoices", contract_id=created.id, client_id=client_id)
    await call("list_invoices", client_id=client_id, start=date(2025, 1, 1), end=date(2026, 12, 31))
    await call("earliest_invoices")
    await call("list_time_entries", start=date(2026, 1, 1), end=date(2026, 1, 31))
    await call("list_tickets", client_id=client_id, start=date(2025, 1, 1), end=date(2026, 12, 31))
    await call("list_prepay_entries", client_id=client_id, contract_id=created.id)
    licence = await call("create_licence", LicenceFields(
        client_id=client_id, product_code="SPEC-SKU", name="Spec licence", quantity=2,
        unit_price=Decimal("9.99"), billing_cycle="Monthly", term="P1M"))
    await call("update_licence", licence.id, LicenceFields(quantity=3))
    await call("get_licence", licence.id)
    await call("list_licences", client_id=client_id)
    await call("list_licences", client_id=client_id, include_inactive=True)
    await call("delete_licence", licence.id)
    charge = ChargeDraft(product_code="AZURE-PLAN", description="Azure usage", quantity=Decimal(1),
                         unit_cost=Decimal("80.10"), unit_price=Decimal("92.12"), period_start=date(2026, 2, 1),
                         period_end=date(2026, 2, 28), charge_type="usage", feed_lines=[2])
    invoice = await call("create_invoice", client_id, date(2026, 3, 1), [charge])
    await call("add_invoice_lines", invoice.id, [charge.model_copy(update={"product_code": "ONBOARD"})])
    await call("get_invoice", invoice.id)
    await call("list_invoices", client_id=client_id, not_posted_only=True)
    await call("find_charge_invoice", client_id, [charge], exclude=())
    await call("add_recurring_charges", header.id, [charge])
    # verify's cleanup: a recurring invoice and a contract of its own are deleted
    spare = await call("create_contract", ContractFields(client_id=client_id, ref="SPEC-CHECK-2", status="Pending",
                                                         start_date=date(2027, 1, 1)))
    spare_header = await call("create_recurring_invoice", client_id=client_id, contract_id=spare.id,
                              contract_ref=spare.ref, billing_frequency="Monthly", start_date=date(2027, 1, 1))
    await call("delete_recurring_invoice", spare_header.id)
    await call("delete_contract", spare.id)


def test_public_method_list_is_what_the_interface_fixes():
    assert sorted([
        "list_clients", "get_client", "list_slas", "get_lookup", "list_contracts", "get_contract",
        "create_contract", "update_contract", "list_recurring_invoices", "get_recurring_invoice",
        "create_recurring_invoice", "add_recurring_lines", "update_recurring_line", "list_invoices",
        "earliest_invoices", "list_time_entries", "list_tickets", "list_prepay_entries", "list_licences",
        "create_licence", "update_licence", "delete_licence", "get_licence", "authenticate", "probe",
        "create_invoice", "add_invoice_lines", "get_invoice", "find_charge_invoice", "add_recurring_charges",
        "delete_contract", "delete_recurring_invoice"]) == PUBLIC_METHODS


# Where the client follows the 2026 document against the 2024 one (the 2026 one decides).
OLDER_ONLY = {
    "query parameter 'start_date' is not declared for GET /Invoice",
    "query parameter 'end_date' is not declared for GET /Invoice",
    "query parameter 'datesearch' is not declared for GET /Invoice",
}


def older_only_kinds(checked: SpecCheckingTransport) -> set[str]:
    return {p.split(": ", 1)[1] for p in checked.older_only}


async def test_every_method_conforms_on_the_fake():
    fake = FakeHalo(contracts=[fake_contract(1)], clients=[{"id": 10, "name": "Acme"}])
    checked = SpecCheckingTransport(fake.transport())
    called: set[str] = set()
    async with HaloClient(fake_settings(), transport=checked, backoff=FAST, budget=roomy_budget()) as halo:
        await exercise_every_method(halo, client_id=10, called=called)
    assert called == set(PUBLIC_METHODS)
    checked.assert_clean()
    assert older_only_kinds(checked) == OLDER_ONLY
    assert ("POST", "/RecurringInvoice/Lines") in checked.operations()
    assert checked.outside == [("POST", "/auth/token")]


@pytest.mark.parametrize("write_answers", ["record", "empty"])
async def test_every_method_conforms_on_the_sandbox(write_answers):
    sandbox = pytest.importorskip("halo_contracts.sandbox")
    app = sandbox.create_app(sandbox.SandboxConfig(clients=4, contracts=8, today=date(2026, 3, 15), strict=True,
                                                   quirks=sandbox.Quirks(write_answers=write_answers)))
    checked = SpecCheckingTransport(sandbox.transport(app))
    settings = fake_settings(base_url="http://sandbox", client_id="sandbox-client", client_secret="sandbox-secret")
    called: set[str] = set()
    async with HaloClient(settings, transport=checked, backoff=FAST, budget=roomy_budget()) as halo:
        [first, *_] = await halo.list_clients()
        await exercise_every_method(halo, client_id=first.id, called=called)
    assert called == set(PUBLIC_METHODS)
    checked.assert_clean()
    assert older_only_kinds(checked) == OLDER_ONLY
    # the annual line went to a second recurring invoice of the contract, with period Annual
    [contract_id] = {body[0]["contract_id"] for r in checked.requests
                     if r.method == "POST" and r.template == "/RecurringInvoice" for body in [r.body]
                     if body[0].get("contract_ref") == "SPEC-CHECK-1"}
    periods = sorted(h.get("period") for h in app.state.sandbox.store.where("rinvoices", "contract_id = ?",
                                                                              [contract_id]))
    assert periods == [1, 3]
    # the sandbox (strict mode) saw the same requests and refused none of them
    statuses = {(e.method, e.path): e.status for e in app.state.sandbox.log.entries()}
    assert all(s < 400 for s in statuses.values()), statuses


# ---- the checker itself catches what it should ---------------------------------------------


@pytest.mark.parametrize(("method", "path", "query", "body", "expected"), [
    ("GET", "/api/ClientContracts", {}, None, "no such path"),
    ("PUT", "/api/ClientContract", {}, [{}], "method not allowed"),
    ("GET", "/api/ClientContract", {"status": "1"}, None, "'status' is not declared"),
    ("GET", "/api/ClientContract", {"includeinactive": "yes"}, None, "not true/false"),
    ("GET", "/api/ClientContract/abc", {}, None, "not an integer"),
    ("POST", "/api/ClientContract", {}, {"ref": "x"}, "must be a JSON array"),
    ("POST", "/api/ClientContract", {}, [{"startdate": "2026-01-01T00:00:00"}], "startdate: no such property"),
    ("POST", "/api/ClientContract", {}, [{"periodchargeamount": "12.50"}], "expected number"),
    ("POST", "/api/ClientContract", {}, [{"status": True}], "expected integer"),
    ("POST", "/api/ClientContract", {}, [{"start_date": "next monday"}], "not a date-time"),
    ("POST", "/api/RecurringInvoice/Lines", {}, [{"ihid": 1, "qty": 2}], "qty: no such property"),
    ("POST", "/api/ClientContract", {}, [{"id": None}], "null is not allowed"),
    ("POST", "/api/ClientContract", {}, None, "declares a request body"),
    ("GET", "/api/Tickets", {"datesearch": "dateoccurred"}, None, "not one of the values the slice documents"),
    ("GET", "/api/SoftwareLicence", {"includeinactive": "1"}, None, "not true/false"),
])
def test_checker_flags_bad_requests(method, path, query, body, expected):
    problems = check_request(method, path, query, body)
    assert any(expected in p for p in problems), problems


def test_checker_accepts_good_requests_case_insensitively():
    assert check_request("GET", "/api/clientcontract/12", {"includedetails": "true"}) == []
    assert check_request("GET", "/api/RecurringInvoice/-240", {"includedetails": "true"}) == []
    assert check_request("POST", "/api/RecurringInvoice/updatelines", None,
                         [{"id": 5, "ihid": -240, "qty_order": 2.5}]) == []
    assert check_request("DELETE", "/api/SoftwareLicence/3") == []
    assert check_request("GET", "/api/Tickets", {"datesearch": "dateoccured"}) == []
    assert check_request("GET", "/api/Tickets", {"datesearch": "DateCleared"}) == []
    assert check_request("GET", "/api/SoftwareLicence", {"includeinactive": "true"}) == []
    assert load_spec().find("GET", "/Tickets")[0].documented["datesearch"] == ("dateoccured", "datecleared")
    assert load_spec().find("POST", "/RecurringInvoice/Lines")[0].template == "/RecurringInvoice/Lines"


async def test_transport_records_and_forwards():
    inner = httpx2.MockTransport(lambda request: httpx2.Response(200, json=[]))
    checked = SpecCheckingTransport(inner)
    async with httpx2.AsyncClient(transport=checked, base_url="https://x.test") as http:
        await http.get("/api/SLA", params={"showpriorities": "false"})
        await http.get("/api/SLA", params={"bogus": "1"})
        await http.post("/auth/token", data={"grant_type": "client_credentials"})
    assert len(checked.requests) == 2 and checked.outside == [("POST", "/auth/token")]
    assert len(checked.violations) == 1 and "bogus" in checked.violations[0]
    with pytest.raises(AssertionError, match="bogus"):
        checked.assert_clean()
