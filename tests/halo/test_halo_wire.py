"""halo/wire.py: the friendly <-> Halo field tables and the mapping functions built on them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from halo_contracts.config import Settings
from halo_contracts.domain.drafts import ContractFields, LicenceFields, RecurringItemFields
from halo_contracts.domain.models import Contract, Licence, RecurringItem
from halo_contracts.halo import wire
from halo_contracts.halo.errors import HaloValidationError, HaloWireError
from support.spec import load_spec

CODES = Settings().code_maps


@pytest.mark.parametrize(("table", "schema", "model", "draft"), [
    (wire.CONTRACT_FIELDS, "ContractHeader", Contract, ContractFields),
    (wire.RECURRING_ITEM_FIELDS, "InvoiceDetail", RecurringItem, RecurringItemFields),
    (wire.LICENCE_FIELDS, "Licence_List", Licence, LicenceFields),
])
def test_tables_cover_models_and_drafts_and_name_real_halo_fields(table, schema, model, draft):
    props = load_spec().schemas[schema]["properties"]
    # a line's billing frequency is its recurring invoice's period in the 2026 document (lines
    # lost billingperiod); the 2024 document's line field is still read as a fallback
    on_header = {"billing_frequency": "InvoiceHeader"} if schema == "InvoiceDetail" else {}
    for friendly, entry in table.items():
        assert set(entry) == {"halo", "note"} and entry["note"]
        where = on_header.get(friendly, schema)
        for name in entry["halo"].split(" / "):
            assert name in load_spec().schemas[where]["properties"], f"{friendly} -> {name} is not a {where} property"
    if on_header:
        assert "billingperiod" not in props
        assert "billingperiod" in load_spec("2024").schemas["InvoiceDetail"]["properties"]
    assert set(model.model_fields) <= set(table), set(model.model_fields) - set(table)
    assert set(draft.model_fields) <= set(table)
    for name in draft.model_fields:  # every draft field is writable
        assert "read only" not in table[name]["note"], name


def test_table_examples():
    assert wire.CONTRACT_FIELDS["value"]["halo"] == "periodchargeamount"
    assert wire.CONTRACT_FIELDS["notes"]["halo"] == "note"
    assert wire.CONTRACT_FIELDS["prepaid_hours"]["halo"] == "startbalance"
    assert wire.RECURRING_ITEM_FIELDS["quantity"]["halo"] == "qty_order"
    assert wire.LICENCE_FIELDS["product_code"]["halo"] == "product_sku"
    assert "read only" in wire.CONTRACT_FIELDS["prepay_balance"]["note"]


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-10-06T05:04:29.23", date(2026, 10, 6)),
    ("2026-10-06T00:00:00", date(2026, 10, 6)),
    ("2026-10-06T23:30:00Z", date(2026, 10, 6)),
    ("2026-10-07T01:30:00+02:00", date(2026, 10, 6)),  # UTC
    ("2026-10-06T05:04:29.1234567", date(2026, 10, 6)),  # .NET's 7 fraction digits
    ("2026-10-06", date(2026, 10, 6)),
    ("1900-01-01T00:00:00", None),  # Halo's "no date"
    ("", None), (None, None), ("garbage", None),
])
def test_parse_date(text, expected):
    assert wire.parse_date(text) == expected


def test_money_is_exact_decimal_and_floats_only_at_the_wire():
    assert wire.parse_decimal(0.1) == Decimal("0.1")
    assert wire.parse_decimal(1499.99) == Decimal("1499.99")
    assert wire.parse_decimal(20) == Decimal(20)
    assert wire.parse_decimal(True) is None
    body = wire.contract_to_wire(ContractFields(value=Decimal("1499.99"), prepaid_hours=Decimal(20)), CODES)
    assert body == {"periodchargeamount": 1499.99, "startbalance": 20.0}
    assert type(body["periodchargeamount"]) is float


def test_contract_round_trip_through_the_wire():
    fields = ContractFields(client_id=3, ref="R-1", type="Warranty", status="On Hold", start_date=date(2026, 1, 1),
                            end_date=date(2026, 12, 31), billing_frequency="Annual", value=Decimal("12.34"),
                            notes="hello", sla_id=2, site_id=4, next_invoice_date=date(2026, 2, 1),
                            prepaid_hours=Decimal("7.5"), previous_contract_id=9, term_months=12,
                            prepay_expiry_months=6)
    body = wire.contract_to_wire(fields, CODES, contract_id=77)
    assert next(iter(body)) == "id" and body["id"] == 77
    assert body["contracttype"] == 5 and body["status"] == 5 and body["billingperiod"] == 3
    assert body["start_date"] == "2026-01-01T00:00:00" and body["periodicinvoicenextdate"] == "2026-02-01T00:00:00"
    back = wire.contract_from_wire(body, CODES)
    for name, value in fields.given().items():
        assert getattr(back, name) == value, name


def test_only_given_fields_are_sent():
    assert wire.contract_to_wire(ContractFields(ref="x"), CODES) == {"ref": "x"}
    assert wire.contract_to_wire(ContractFields(end_date=None), CODES) == {"end_date": None}
    assert wire.recurring_item_to_wire(RecurringItemFields(unit_price=Decimal(5)), CODES, line_id=3,
                                       recurring_invoice_id=-240) == {"id": 3, "ihid": -240, "unit_price": 5.0}
    assert wire.licence_to_wire(LicenceFields(quantity=4), licence_id=8) == {"id": 8, "count": 4}


def test_codes_unknown_and_tenant_specific():
    row = {"id": 1, "status": 42, "contracttype": 1, "billingperiod": 0}
    c = wire.contract_from_wire(row, CODES)
    assert c.status == "code 42" and c.type == "Recurring" and c.billing_frequency is None and c.ref == ""
    assert wire.contract_to_wire(ContractFields(status="code 42"), CODES) == {"status": 42}
    assert wire.contract_to_wire(ContractFields(status="active"), CODES) == {"status": 1}  # case-insensitive
    with pytest.raises(HaloWireError) as info:
        wire.contract_to_wire(ContractFields(billing_frequency="Fortnightly"), CODES)
    assert isinstance(info.value, HaloValidationError)
    assert "Monthly, Quarterly, Annual" in str(info.value)
    tenant = Settings(status_codes="10:Live,20:Dead").code_maps
    assert wire.contract_from_wire({"id": 1, "status": 10}, tenant).status == "Live"
    assert wire.contract_to_wire(ContractFields(status="Dead"), tenant) == {"status": 20}


def test_line_billing_period_zero_means_the_contracts():
    line = wire.recurring_item_from_wire({"id": 1, "ihid": -5, "billingperiod": 0, "qty_order": 2.5,
                                          "unit_price": 10.1, "isinactive": True}, CODES)
    assert line.billing_frequency is None and line.recurring_invoice_id == -5 and line.inactive
    assert line.quantity == Decimal("2.5") and line.unit_price == Decimal("10.1")
    # the 2026 document's lines have no billingperiod: the frequency picks the recurring invoice
    body = wire.recurring_item_to_wire(RecurringItemFields(billing_frequency=None), CODES)
    assert body == {}
    body = wire.recurring_item_to_wire(RecurringItemFields(billing_frequency="Annual", quantity=1), CODES)
    assert body == {"qty_order": 1}


def test_recurring_invoice_schedule_and_period_carry_the_line_frequency():
    body = wire.recurring_invoice_to_wire(client_id=3, contract_id=7, contract_ref="C-7", billing_frequency="Annual",
                                          codes=CODES, start_date=date(2026, 1, 1), end_date=date(2026, 12, 31),
                                          next_creation_date=date(2026, 1, 1))
    assert body == {"client_id": 3, "contract_id": 7, "is_recurring_invoice": True, "contract_ref": "C-7",
                    "period": 3, "startdate": "2026-01-01T00:00:00", "enddate": "2026-12-31T00:00:00",
                    "nextcreationdate": "2026-01-01T00:00:00"}
    ri = wire.recurring_invoice_from_wire({"id": 9, "contract_id": 7, "period": 3, "startdate": "2026-01-01T00:00:00",
                                           "lines": [{"id": 1, "item_shortdescription": "Audit"},
                                                     {"id": 2, "billingperiod": 1}]}, CODES)
    assert ri.billing_frequency == "Annual" and ri.start_date == date(2026, 1, 1)
    assert [line.billing_frequency for line in ri.lines] == ["Annual", "Monthly"]  # a 2024 line keeps its own
    bare = wire.recurring_invoice_from_wire({"id": 9, "lines": [{"id": 1}]}, CODES)
    assert bare.billing_frequency is None and bare.lines[0].billing_frequency is None


def test_recurring_invoice_lines_inherit_header_ids():
    ri = wire.recurring_invoice_from_wire({"id": -240, "client_id": 3, "contract_id": 7, "contract_ref": "C-7",
                                           "nextcreationdate": "2026-04-01T00:00:00",
                                           "lines": [{"id": 1, "item_shortdescription": "Seat"}]}, CODES)
    assert ri.id == -240 and ri.next_creation_date == date(2026, 4, 1)
    assert ri.lines[0].recurring_invoice_id == -240 and ri.lines[0].contract_id == 7
