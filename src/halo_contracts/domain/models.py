"""Domain models: the friendly vocabulary every layer above ``halo/`` speaks.

Pure data. No I/O, no HTTP, no MCP. Money is ``Decimal``; dates are ``date``.
Names follow the contract guide's friendly names (``start_date``, ``value``,
``billing_frequency`` ...), never Halo's wire names; ``halo/wire.py`` maps between the two.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

# Friendly names of the standard contract types, statuses and billing frequencies.
# Tenants can define more (configuration); these are the ones the guide describes.
CONTRACT_TYPES: tuple[str, ...] = ("Recurring", "Prepaid Hours", "Ad-Hoc", "Project", "Warranty")
CONTRACT_STATUSES: tuple[str, ...] = ("Active", "Pending", "Expired", "Cancelled", "On Hold")
BILLING_FREQUENCIES: tuple[str, ...] = ("Monthly", "Quarterly", "Annual")


class DomainModel(BaseModel):
    model_config = ConfigDict(frozen=False, extra="forbid")


class Client(DomainModel):
    id: int
    name: str
    inactive: bool = False
    parent_name: str | None = None


class Sla(DomainModel):
    id: int
    name: str


class LookupValue(DomainModel):
    """One entry of a tenant lookup list (contract types, statuses, billing periods)."""

    id: int
    name: str
    inactive: bool = False


class ContractPeriod(DomainModel):
    """A prepay/allowance period of a contract (Halo ``periods`` / ``prepay_periods``)."""

    name: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    current: bool = False
    hours_in_period: Decimal | None = None
    hours_used: Decimal | None = None
    hours_remaining: Decimal | None = None
    hours_expired: Decimal | None = None
    amount_remaining: Decimal | None = None


class PrepayEntry(DomainModel):
    """A row of the client prepay ledger (hours or money added, expired, invoiced)."""

    id: int
    client_id: int | None = None
    contract_id: int | None = None
    entry_date: date | None = None
    hours: Decimal = Decimal(0)
    amount: Decimal = Decimal(0)
    description: str | None = None
    expiry_date: date | None = None
    invoice_number: str | None = None


class Contract(DomainModel):
    """A client contract in friendly fields.

    ``type``/``status``/``billing_frequency`` are friendly names resolved through the
    tenant's code maps; an unknown code is kept as ``"code <n>"`` so nothing is lost.
    Prepay fields are filled only when the contract was read with its details.
    """

    id: int
    client_id: int | None = None
    client_name: str | None = None
    ref: str = ""
    type: str | None = None
    status: str | None = None
    active: bool | None = None
    start_date: date | None = None
    end_date: date | None = None
    billing_frequency: str | None = None
    value: Decimal | None = None
    notes: str | None = None
    sla_id: int | None = None
    sla_name: str | None = None
    site_id: int | None = None
    next_invoice_date: date | None = None
    previous_contract_id: int | None = None
    term_months: int | None = None
    # Prepaid hours / prepay bank (detail reads only)
    prepaid_hours: Decimal | None = None  # the block bought when the contract was set up
    prepay_total: Decimal | None = None
    prepay_used: Decimal | None = None
    prepay_balance: Decimal | None = None
    prepay_as_amount: bool = False
    prepay_expiry_months: int | None = None
    hours_per_period: Decimal | None = None
    periods: list[ContractPeriod] = Field(default_factory=list)
    prepay_history: list[PrepayEntry] = Field(default_factory=list)
    last_modified: date | None = None

    @property
    def hourly_rate(self) -> Decimal | None:
        """Rate of a prepaid block: its price divided by its hours."""
        if self.value is None or not self.prepaid_hours:
            return None
        return self.value / self.prepaid_hours


class RecurringInvoice(DomainModel):
    """The recurring invoice that carries a contract's recurring lines."""

    id: int
    client_id: int | None = None
    contract_id: int | None = None
    contract_ref: str | None = None
    billing_frequency: str | None = None  # how often it raises an invoice (its lines bill at it)
    start_date: date | None = None
    end_date: date | None = None
    next_creation_date: date | None = None
    lines: list[RecurringItem] = Field(default_factory=list)


class RecurringItem(DomainModel):
    """A recurring billing line (a line of the contract's recurring invoice)."""

    id: int | None = None
    recurring_invoice_id: int | None = None
    contract_id: int | None = None
    description: str = ""
    long_description: str | None = None
    item_id: int | None = None
    product_code: str | None = None  # the item's code (read only)
    quantity: Decimal = Decimal(0)
    unit_price: Decimal = Decimal(0)
    billing_frequency: str | None = None  # None: the contract's frequency
    start_date: date | None = None
    end_date: date | None = None
    inactive: bool = False
    billed_once: bool = False  # a one-off charge on the recurring invoice, not a recurring line


class InvoiceLine(DomainModel):
    id: int | None = None
    contract_id: int | None = None
    description: str = ""
    product_code: str | None = None  # the item's code (charges: part of a line's natural key)
    quantity: Decimal = Decimal(0)
    unit_price: Decimal = Decimal(0)
    total: Decimal = Decimal(0)  # net amount of the line
    start_date: date | None = None
    end_date: date | None = None


class Invoice(DomainModel):
    id: int
    invoice_number: str | None = None
    client_id: int | None = None
    client_name: str | None = None
    contract_id: int | None = None
    invoice_date: date | None = None
    period_start: date | None = None
    period_end: date | None = None
    total: Decimal = Decimal(0)
    is_credit: bool = False
    credit_for_invoice_id: int | None = None
    voided: bool = False
    recurring_invoice_id: int | None = None
    posted: bool | None = None  # None: Halo did not say
    lines: list[InvoiceLine] = Field(default_factory=list)


class TimeEntry(DomainModel):
    """A ticket action that carries time."""

    id: int
    ticket_id: int | None = None
    contract_id: int | None = None
    client_id: int | None = None
    when: date | None = None
    hours: Decimal = Decimal(0)
    billable: bool = False
    charge_amount: Decimal = Decimal(0)
    prepay_hours: Decimal = Decimal(0)
    invoice_number: str | None = None
    note: str | None = None

    @property
    def invoiced(self) -> bool:
        return bool(self.invoice_number)


class Ticket(DomainModel):
    id: int
    client_id: int | None = None
    contract_id: int | None = None
    summary: str | None = None
    sla_id: int | None = None
    sla_met: bool | None = None  # None: the SLA was not tracked on this ticket
    hours: Decimal = Decimal(0)
    opened: date | None = None
    closed: date | None = None


class Licence(DomainModel):
    """A software licence (subscription) held by a client in Halo."""

    id: int | None = None
    client_id: int | None = None
    client_name: str | None = None
    product_code: str = ""
    name: str = ""
    quantity: int = 0
    unit_price: Decimal | None = None
    billing_cycle: str | None = None
    term: str | None = None
    distributor: str | None = None  # who supplies it (Halo free text); the licence sync stamps its own
    active: bool = True  # False: ended in Halo (listed only with includeinactive)


RecurringInvoice.model_rebuild()
