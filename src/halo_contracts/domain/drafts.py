"""What tools ask Halo to write, in friendly fields.

A ``ContractFields`` carries only the fields a write sets: for an update, exactly the
fields that change (pydantic's ``model_fields_set`` tells which were given), so the
Halo request sends nothing else. The same holds for ``RecurringItemFields`` and
``LicenceFields``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def given(self) -> dict:
        """The fields that were set explicitly, with their values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class ContractFields(_Fields):
    client_id: int | None = None
    ref: str | None = None
    type: str | None = None
    status: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    billing_frequency: str | None = None
    value: Decimal | None = None
    notes: str | None = None
    sla_id: int | None = None
    site_id: int | None = None
    next_invoice_date: date | None = None
    prepaid_hours: Decimal | None = None
    previous_contract_id: int | None = None
    term_months: int | None = None
    prepay_expiry_months: int | None = None


class RecurringItemFields(_Fields):
    description: str | None = None
    long_description: str | None = None
    item_id: int | None = None
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    billing_frequency: str | None = None
    start_date: date | None = None
    end_date: date | None = None


class LicenceFields(_Fields):
    client_id: int | None = None
    product_code: str | None = None
    name: str | None = None
    quantity: int | None = None
    unit_price: Decimal | None = None
    billing_cycle: str | None = None
    term: str | None = None
    distributor: str | None = None
    active: bool | None = None
