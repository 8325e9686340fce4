"""Deterministic demo book for the sandbox: a believable MSP's HaloPSA contract book.

``generate(store, clients=25, contracts=120, today=..., seed=7)`` fills an empty store and
returns a :class:`Book`, the manifest of what was seeded (for tests and benchmarks; it is
never served over HTTP). The same seed, sizes and ``today`` always give the same data.

What the book contains (each case is listed in the manifest):

* every contract type (Recurring, Prepaid Hours, Ad-Hoc, Project, Warranty) and status
  (Active, Pending, Expired, Cancelled, On Hold);
* recurring invoices (negative ids) with lines for managed workstations, servers, Microsoft
  365 licences, backup, firewall management (quarterly), domain/DNS (annual);
* prepaid-hours contracts whose balances are healthy, low or exhausted, one with hours that
  expire within 30 days and one whose older top-up already expired;
* contracts ending within 30/60/90 days, some already renewed (a later contract names the old
  one in ``previouscontract``);
* invoices for the last six billing months generated from the recurring lines, with
  deliberate discrepancies: a missing month, an under-billed quantity, a line billed after the
  contract ended, a duplicate invoice and an invoice for a contract that is not active; plus a
  fully credited invoice (credit note) and an invoice mixing two contracts, both clean;
* billable time on ticket actions, some already invoiced, some not; SLAs; tickets inside and
  outside SLA; software licences (some counts differ from the billed M365 quantity).

The scripted cases take the first 33 contracts (smaller books get a prefix of them); the
remaining contracts are random but clean.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

from .logic import (
    ACTIVE_STATUSES,
    BILLING_MONTHS,
    BILLING_PERIOD,
    CONTRACT_STATUS,
    CONTRACT_TYPE,
    LOOKUP_IDS,
    add_months,
    cents,
    month_end,
    month_start,
    prepay_summary,
)
from .spec import format_ts
from .store import Store

RECURRING, PREPAID, ADHOC, PROJECT, WARRANTY = 1, 2, 3, 4, 5
ACTIVE, PENDING, EXPIRED, CANCELLED, ON_HOLD = 1, 2, 3, 4, 5
MONTHLY, QUARTERLY, ANNUAL = 1, 2, 3

DISCREPANCY_KINDS = (
    "missing_month",  # a billing period with no invoice (under-billed by the expected total)
    "under_billed",  # an invoice line with a lower quantity than the recurring line
    "billed_after_end",  # an invoice for a period after the contract's end date
    "duplicate_invoice",  # the same contract and period invoiced twice
    "billed_while_inactive",  # an invoice for a contract that is not active (On Hold)
)


@dataclass(frozen=True)
class Discrepancy:
    """One deliberate billing error. ``amount`` is the absolute money difference (to the cent):
    missing/under-billed amounts are owed to the MSP, the others were over-billed."""

    kind: str
    contract_id: int
    invoice_id: int | None
    period_start: date
    period_end: date
    amount: Decimal
    line_id: int | None = None  # the recurring line concerned, when one is
    detail: str = ""


@dataclass
class Book:
    seed: int
    today: date
    billing_months: list[date] = field(default_factory=list)  # first day of each invoiced month
    client_ids: list[int] = field(default_factory=list)
    inactive_client_ids: list[int] = field(default_factory=list)
    client_names: dict[int, str] = field(default_factory=dict)
    sla_ids: list[int] = field(default_factory=list)
    contract_ids: list[int] = field(default_factory=list)
    contracts_by_type: dict[str, list[int]] = field(default_factory=dict)  # friendly type -> ids
    contracts_by_status: dict[str, list[int]] = field(default_factory=dict)  # friendly status -> ids
    recurring_invoice_ids: dict[int, int] = field(default_factory=dict)  # contract id -> its main header id
    # every recurring invoice header id: with the 2026 document's shapes a contract has one per
    # billing frequency of its lines (lines carry no frequency of their own)
    recurring_header_ids: list[int] = field(default_factory=list)
    headers_by_contract: dict[int, list[int]] = field(default_factory=dict)  # contract id -> its header ids
    recurring_line_ids: list[int] = field(default_factory=list)
    quarterly_line_ids: list[int] = field(default_factory=list)
    annual_line_ids: list[int] = field(default_factory=list)
    included_hours_contract_ids: list[int] = field(default_factory=list)  # chargehoursperperiod > 0
    invoice_ids: list[int] = field(default_factory=list)
    time_invoice_ids: list[int] = field(default_factory=list)  # labour invoices (not from recurring)
    mixed_invoice_ids: list[int] = field(default_factory=list)  # lines of two contracts on one invoice
    credit_notes: list[tuple[int, int]] = field(default_factory=list)  # (credited invoice, credit note)
    discrepancies: list[Discrepancy] = field(default_factory=list)
    clean_contract_ids: list[int] = field(default_factory=list)  # billed in the window, no error
    prepaid: dict[str, list[int]] = field(default_factory=dict)  # healthy/low/exhausted/expiring/expired
    prepaid_totals: dict[int, tuple[Decimal, Decimal, Decimal]] = field(default_factory=dict)  # total,used,bal
    expiring: dict[int, list[int]] = field(default_factory=dict)  # 30/60/90 -> Active contracts ending
    renewed: list[tuple[int, int]] = field(default_factory=list)  # (old contract, renewal)
    unbilled_action_ids: list[int] = field(default_factory=list)
    invoiced_action_ids: list[int] = field(default_factory=list)
    unbilled_amount: dict[int, Decimal] = field(default_factory=dict)  # contract id -> money
    ticket_ids: list[int] = field(default_factory=list)
    breached_ticket_ids: list[int] = field(default_factory=list)  # slastate "O"
    licence_ids: list[int] = field(default_factory=list)
    inactive_licence_ids: list[int] = field(default_factory=list)
    # (licence id, recurring line id, licence count, billed quantity) where they differ
    licence_mismatches: list[tuple[int, int, int, int]] = field(default_factory=list)

    def discrepancies_of(self, kind: str) -> list[Discrepancy]:
        return [d for d in self.discrepancies if d.kind == kind]


# ----------------------------------------------------------------------------- catalogue

CLIENT_NAMES = [
    "Acme Corp Ltd",
    "Brightwater Dental, LLC",
    "Northwind Traders Inc.",
    "O'Brien & Sons Plumbing",
    "Smith-Jones Legal LLP",
    "Blue Harbor Logistics, Inc.",
    "Greenfield Medical Group P.C.",
    "Redwood Accounting Co.",
    "St. Mary's Veterinary Clinic",
    "Summit Ridge Architects PLLC",
    "Pinecrest Property Mgmt.",
    "Lakeside Family Dentistry (Main St)",
    "Harbor & Vine Bistro",
    "Evergreen Community Foundation",
    "Kestrel Engineering GmbH",
    "Maple Leaf Accountants Pty Ltd",
    "Quantum Analytics Corp.",
    "Silverline Insurance Brokers Ltd.",
    "Orchard Valley School District",
    "Ironclad Security LLC",
    "Tidewater Marine Supply",
    "Crescent City Law Group, PC",
    "BlueSky Travel & Tours",
    "Atlas Freight Co., Ltd.",
    "Café Lumière S.A.R.L.",
    "Acme Corporation (Old Account)",
]
_NAME_A = [
    "Cedar",
    "Granite",
    "Willow",
    "Falcon",
    "Copper",
    "Harvest",
    "Beacon",
    "Riverside",
    "Oak",
    "Cobalt",
    "Sterling",
    "Meadow",
    "Pioneer",
    "Coastal",
    "Vista",
    "Juniper",
    "Aspen",
    "Liberty",
    "Union",
    "Heritage",
]
_NAME_B = [
    "Dental",
    "Logistics",
    "Accounting",
    "Law",
    "Engineering",
    "Realty",
    "Clinic",
    "Manufacturing",
    "Consulting",
    "Insurance",
    "Motors",
    "Foods",
    "Design",
    "Health",
    "Labs",
    "Builders",
    "Media",
    "Capital",
]
_SUFFIX = [" LLC", " Ltd", " Inc.", " Co.", ", LLC", " Ltd.", " Corp", " GmbH", " Pty Ltd", " PLLC", " & Partners", ""]

SLAS = [
    ("Gold 24x7 (1h response)", 1, "24x7"),
    ("Silver Business Hours (4h response)", 2, "Business hours"),
    ("Bronze Next Business Day", 2, "Business hours"),
    ("Warranty Best Effort", 2, "Business hours"),
]

# code, description, unit price (per the line's own period), qty range, line billingperiod (0 = contract's)
LINE_CATALOG = {
    "workstation": ("MW-STD", "Managed Workstation", Decimal("45.00"), (5, 80), 0),
    "server": ("MS-STD", "Managed Server", Decimal("150.00"), (1, 6), 0),
    "m365": ("M365-BP", "Microsoft 365 Business Premium", Decimal("22.00"), (5, 80), 0),
    "backup": ("BKP-TB", "Cloud Backup (per TB)", Decimal("95.00"), (1, 8), 0),
    "firewall": ("FW-MGMT-Q", "Firewall Management (quarterly)", Decimal("225.00"), (1, 2), QUARTERLY),
    "domain": ("DNS-ANN", "Domain & DNS Hosting (annual)", Decimal("120.00"), (1, 5), ANNUAL),
}
M365_SKU = "CFQ7TTC0LCHC:0002"
OTHER_LICENCES = [
    ("Microsoft Defender for Business", "CFQ7TTC0LCHQ:0001", Decimal("3.00")),
    ("Exchange Online (Plan 1)", "CFQ7TTC0LH16:0001", Decimal("4.00")),
    ("Adobe Acrobat Pro", "65324918CA01A12", Decimal("19.99")),
]
TICKET_SUMMARIES = [
    "Outlook keeps asking for password",
    "New starter laptop setup",
    "Printer offline on 2nd floor",
    "VPN disconnects every hour",
    "Server disk space warning",
    "Backup job failed overnight",
    "Phishing email reported",
    "Teams audio issues",
    "Replace failing switch",
    "Shared drive permissions",
    "MFA reset for user",
    "Quarterly patching window",
    "Firewall firmware upgrade",
    "Wi-Fi slow in warehouse",
]
AGENTS = ["Alex Morgan", "Priya Shah", "Tom Becker", "Lena Ortiz"]
RATE = Decimal("125.00")


def _abbr(name: str) -> str:
    letters = "".join(w[0] for w in name.replace("&", " ").replace(",", " ").split() if w[0].isalnum())
    return (letters[:4] or "CLT").upper()


def _quarter(rnd: random.Random, lo: float, hi: float) -> Decimal:
    return Decimal(rnd.randint(int(lo * 4), int(hi * 4))) / 4


# ----------------------------------------------------------------------------- internal specs


@dataclass
class _Line:
    key: str
    qty: int
    billingperiod: int = 0
    id: int = 0
    start: date | None = None
    end: date | None = None

    @property
    def code(self) -> str:
        return LINE_CATALOG[self.key][0]

    @property
    def desc(self) -> str:
        return LINE_CATALOG[self.key][1]

    @property
    def price(self) -> Decimal:
        return LINE_CATALOG[self.key][2]


@dataclass
class _Contract:
    id: int
    client_id: int
    type: int
    status: int
    start: date
    end: date | None
    billingperiod: int = MONTHLY
    lines: list[_Line] = field(default_factory=list)
    previous: int = 0
    sla_id: int | None = None
    charge: Decimal = Decimal(0)
    startbalance: Decimal = Decimal(0)
    chargehours: Decimal = Decimal(0)
    tag: str = ""
    # prepaid: ledger rows (date, hours, expiry) and hours to use
    topups: list[tuple[date, Decimal, date | None]] = field(default_factory=list)
    use_hours: Decimal = Decimal(0)
    header_id: int = 0


class _Generator:
    def __init__(self, store: Store, clients: int, contracts: int, today: date, seed: int,
                 line_periods: bool = False) -> None:
        self.store = store
        self.line_periods = line_periods  # 2024 shapes: one header per contract, a billingperiod per line
        self.rnd = random.Random(seed)
        self.n_clients = max(1, clients)
        self.n_contracts = max(0, contracts)
        self.today = today
        self.book = Book(seed=seed, today=today)
        this_month = month_start(today)
        self.months = [add_months(this_month, -i) for i in range(5, -1, -1)]
        self.book.billing_months = list(self.months)
        self.ids = {
            t: store.next_id(t)
            for t in (
                "clients",
                "slas",
                "contracts",
                "rinvoices",
                "rlines",
                "invoices",
                "ilines",
                "prepay",
                "actions",
                "tickets",
                "licences",
                "lookups",
            )
        }
        self.docs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.contracts: list[_Contract] = []
        self.client_docs: dict[int, dict] = {}

    def next(self, table: str) -> int:
        value = self.ids[table]
        self.ids[table] += -1 if table == "rinvoices" else 1
        return value

    # ------------------------------------------------------------------ reference data
    def lookups(self) -> None:
        for name, codes in (("status", CONTRACT_STATUS), ("type", CONTRACT_TYPE), ("billingperiod", BILLING_PERIOD)):
            for code, label in codes.items():
                self.docs["lookups"].append(
                    {
                        "id": self.next("lookups"),
                        "_code": code,
                        "lookupid": LOOKUP_IDS[name],
                        "name": label,
                        "inactive": False,
                    }
                )

    def slas(self) -> None:
        for name, workday, workday_name in SLAS:
            sid = self.next("slas")
            self.docs["slas"].append(
                {
                    "id": sid,
                    "name": name,
                    "workday_id": workday,
                    "workday_name": workday_name,
                    "trackslaresponsetime": True,
                    "trackslafixbytime": True,
                    "responsereset": False,
                }
            )
            self.book.sla_ids.append(sid)

    def clients(self) -> None:
        names = list(CLIENT_NAMES[: min(self.n_clients - 1, len(CLIENT_NAMES) - 1)] or CLIENT_NAMES[:1])
        seen = set(names)
        while len(names) < self.n_clients - 1:
            name = f"{self.rnd.choice(_NAME_A)} {self.rnd.choice(_NAME_B)}{self.rnd.choice(_SUFFIX)}"
            if name in seen:
                name = f"{name} ({len(names) + 1})"
            seen.add(name)
            names.append(name)
        if self.n_clients > 1:
            names.append(CLIENT_NAMES[-1])  # an inactive old account, near-duplicate of Acme
        for i, name in enumerate(names):
            cid = self.next("clients")
            inactive = i == len(names) - 1 and self.n_clients > 1
            doc = {
                "id": cid,
                "name": name,
                "inactive": inactive,
                "toplevel_id": 1,
                "toplevel_name": "Customers",
                "accountsid": f"ACC{cid:05d}",
                "hourlyrate": float(RATE),
                "notes": "",
            }
            self.docs["clients"].append(doc)
            self.client_docs[cid] = doc
            self.book.client_ids.append(cid)
            self.book.client_names[cid] = name
            if inactive:
                self.book.inactive_client_ids.append(cid)
        self.active_clients = [c for c in self.book.client_ids if c not in self.book.inactive_client_ids]

    # ------------------------------------------------------------------ contract specs
    def _lines(self, billingperiod: int = MONTHLY, extra: tuple[str, ...] = ()) -> list[_Line]:
        rnd = self.rnd
        keys = ["workstation"]
        for key, p in (("server", 0.6), ("m365", 0.7), ("backup", 0.6), ("firewall", 0.2), ("domain", 0.15)):
            if rnd.random() < p:
                keys.append(key)
        for key in extra:
            if key not in keys:
                keys.append(key)
        lines = []
        for key in keys:
            lo, hi = LINE_CATALOG[key][3]
            bp = LINE_CATALOG[key][4]
            if billingperiod != MONTHLY and bp in (QUARTERLY,):
                bp = 0  # a quarterly/annual contract bills its firewall line with the contract
            lines.append(_Line(key, rnd.randint(lo, hi), bp))
        return lines

    def _contract(self, ctype: int, status: int, start: date, end: date | None, **kw: Any) -> _Contract:
        client = kw.pop("client_id", None) or self.rnd.choice(self.active_clients)
        c = _Contract(
            id=self.next("contracts"), client_id=client, type=ctype, status=status, start=start, end=end, **kw
        )
        if c.sla_id is None:
            index = (
                self.rnd.choice([0, 1])
                if ctype == RECURRING
                else {PREPAID: 1, ADHOC: 2, PROJECT: 1, WARRANTY: 3}[ctype]
            )
            c.sla_id = self.book.sla_ids[index]
        for line in c.lines:
            line.start = line.start or start
        self.contracts.append(c)
        return c

    def _term(self, start: date, months: int) -> date:
        return add_months(start, months) - timedelta(days=1)

    def _far_end(self, start: date) -> date:
        """An end date more than 120 days away (outside the 90-day renewal horizon)."""
        months = self.rnd.choice([12, 24, 36])
        end = self._term(start, months)
        while end <= self.today + timedelta(days=120):
            months += 12
            end = self._term(start, months)
        return end

    def _past_start(self, lo_months: int = 8, hi_months: int = 30) -> date:
        return add_months(month_start(self.today), -self.rnd.randint(lo_months, hi_months))

    def scripted(self) -> None:
        m = self.months
        today = self.today
        R = RECURRING
        steps: list[Any] = []

        def recurring(
            tag: str,
            status: int = ACTIVE,
            start: date | None = None,
            end: date | None = None,
            billingperiod: int = MONTHLY,
            extra: tuple[str, ...] = (),
            **kw: Any,
        ) -> _Contract:
            start = start or self._past_start()
            return self._contract(
                R,
                status,
                start,
                end if end is not None else self._far_end(start),
                billingperiod=billingperiod,
                lines=self._lines(billingperiod, extra),
                tag=tag,
                **kw,
            )

        steps.append(lambda: recurring("clean_quarterly_line", extra=("firewall", "m365")))
        steps.append(lambda: recurring("clean_annual_line", start=add_months(m[2], -12), extra=("domain",)))
        steps.append(lambda: recurring("quarterly_contract", start=add_months(m[1], -12), billingperiod=QUARTERLY))
        steps.append(lambda: recurring("annual_contract", start=add_months(m[3], -12), billingperiod=ANNUAL))
        steps.append(lambda: recurring("missing_month"))
        steps.append(lambda: recurring("under_billed", extra=("workstation",)))
        steps.append(
            lambda: recurring(
                "billed_after_end", status=EXPIRED, start=add_months(m[2], -12), end=month_end(m[2]), extra=("backup",)
            )
        )
        steps.append(lambda: recurring("duplicate_invoice"))
        steps.append(lambda: recurring("billed_while_inactive", status=ON_HOLD, start=add_months(m[0], -14)))
        steps.append(lambda: recurring("credited_invoice"))

        def mixed() -> None:
            a = recurring("mixed_a")
            recurring("mixed_b", client_id=a.client_id)

        steps.append(mixed)
        steps.append(lambda: recurring("included_hours", chargehours=Decimal(4)))

        def prepaid(
            tag: str, startbalance: int, use: Decimal, start: date, topups: list[tuple[date, Decimal, date | None]] = ()
        ) -> None:
            self._contract(
                PREPAID,
                ACTIVE,
                start,
                self._far_end(start),
                startbalance=Decimal(startbalance),
                charge=cents(Decimal(startbalance) * RATE),
                use_hours=use,
                topups=list(topups),
                tag=tag,
            )

        s16 = add_months(month_start(today), -16)
        steps.append(
            lambda: prepaid(
                "prepaid_healthy_expired_topup",
                20,
                Decimal("24"),
                s16,
                [
                    (add_months(s16, 1), Decimal(10), add_months(s16, 13)),
                    (add_months(month_start(today), -2), Decimal(20), None),
                ],
            )
        )
        s10 = add_months(month_start(today), -10)
        steps.append(lambda: prepaid("prepaid_low", 20, Decimal("17.5"), s10))
        steps.append(
            lambda: prepaid("prepaid_exhausted", 10, Decimal("21.25"), s10, [(add_months(s10, 3), Decimal(10), None)])
        )
        s12 = add_months(month_start(today), -12)
        steps.append(
            lambda: prepaid(
                "prepaid_expiring",
                10,
                Decimal("6"),
                s12,
                [(s12 + timedelta(days=14), Decimal(15), today + timedelta(days=14))],
            )
        )
        steps.append(lambda: prepaid("prepaid_healthy", 40, Decimal("12.5"), s10))

        for days, term in ((20, 12), (45, 12), (80, 24)):
            end = today + timedelta(days=days)
            steps.append(
                lambda end=end, days=days, term=term: recurring(
                    f"expiring_{days}", start=add_months(end + timedelta(days=1), -term), end=end
                )
            )

        def renewed_soon() -> None:
            end = today + timedelta(days=25)
            old = recurring("renewed_soon_old", start=add_months(end + timedelta(days=1), -12), end=end)
            nstart = end + timedelta(days=1)
            self._contract(
                R,
                PENDING,
                nstart,
                self._term(nstart, 12),
                lines=self._lines(),
                tag="renewed_soon_new",
                previous=old.id,
                client_id=old.client_id,
                sla_id=old.sla_id,
            )

        def renewed_past() -> None:
            end = month_end(m[1])
            old = recurring("renewed_past_old", status=EXPIRED, start=add_months(m[2], -12), end=end)
            self._contract(
                R,
                ACTIVE,
                m[2],
                self._term(m[2], 12),
                lines=self._lines(),
                tag="renewed_past_new",
                previous=old.id,
                client_id=old.client_id,
                sla_id=old.sla_id,
            )

        steps.append(renewed_soon)
        steps.append(renewed_past)
        for i in range(2):
            steps.append(lambda i=i: self._contract(ADHOC, ACTIVE, self._past_start(), None, tag=f"adhoc_time_{i}"))
        steps.append(
            lambda: self._contract(
                PROJECT, ACTIVE, add_months(m[0], -1), self._far_end(m[0]), charge=Decimal("18500.00"), tag="project"
            )
        )
        steps.append(
            lambda: self._contract(
                WARRANTY, ACTIVE, self._past_start(), self._far_end(self._past_start()), tag="warranty"
            )
        )
        steps.append(lambda: recurring("pending", status=PENDING, start=add_months(month_start(today), 1)))
        steps.append(
            lambda: recurring(
                "cancelled", status=CANCELLED, start=add_months(m[0], -15), end=month_end(add_months(m[0], -2))
            )
        )
        steps.append(
            lambda: recurring(
                "expired_old", status=EXPIRED, start=add_months(m[0], -26), end=month_end(add_months(m[0], -2))
            )
        )
        steps.append(lambda: recurring("on_hold_clean", status=ON_HOLD, start=add_months(m[0], -20)))
        for step in steps:
            if len(self.contracts) >= self.n_contracts:
                break
            step()
        del self.contracts[self.n_contracts :]

    def fillers(self) -> None:
        rnd = self.rnd
        while len(self.contracts) < self.n_contracts:
            ctype = rnd.choices([RECURRING, PREPAID, ADHOC, PROJECT, WARRANTY], [52, 12, 16, 9, 11])[0]
            status = rnd.choices([ACTIVE, PENDING, EXPIRED, CANCELLED, ON_HOLD], [84, 4, 6, 3, 3])[0]
            if status == PENDING:
                start = add_months(month_start(self.today), rnd.randint(1, 3))
                end = self._far_end(start)
            elif status in (EXPIRED, CANCELLED):
                start = add_months(self.months[0], -rnd.randint(14, 40))
                end = month_end(add_months(self.months[0], -rnd.randint(1, 6)))
            else:
                start = self._past_start(1 if ctype != RECURRING else 7, 40)
                end = None if ctype == ADHOC and rnd.random() < 0.5 else self._far_end(start)
            kw: dict[str, Any] = {"tag": "filler"}
            if ctype == RECURRING:
                bp = rnd.choices([MONTHLY, QUARTERLY, ANNUAL], [88, 8, 4])[0]
                kw.update(billingperiod=bp, lines=self._lines(bp))
            elif ctype == PREPAID:
                sb = rnd.choice([10, 20, 40])
                kw.update(
                    startbalance=Decimal(sb),
                    charge=cents(Decimal(sb) * RATE),
                    use_hours=_quarter(rnd, sb * 0.1, sb * 0.6),
                )
            elif ctype == PROJECT:
                kw.update(charge=Decimal(rnd.randint(20, 300) * 100))
            self._contract(ctype, status, start, end, **kw)

    # ------------------------------------------------------------------ billing
    def _line_due(self, c: _Contract, line: _Line, month: date) -> bool:
        start = month_start(line.start or c.start)
        if month < start or (line.end and month > line.end):
            return False
        period = BILLING_MONTHS[line.billingperiod or c.billingperiod]
        months = (month.year - start.year) * 12 + month.month - start.month
        return months % period == 0

    def _contract_billed(self, c: _Contract, month: date) -> bool:
        if c.status in (PENDING, ON_HOLD):
            return False
        if month < month_start(c.start):
            return False
        return not (c.end and month > c.end)

    def recurring_headers(self) -> None:
        for c in self.contracts:
            if c.type != RECURRING or not c.lines:
                continue
            groups: dict[int, list[_Line]] = {}
            for line in c.lines:
                key = c.billingperiod if self.line_periods else (line.billingperiod or c.billingperiod)
                groups.setdefault(key, []).append(line)
            # the contract's own frequency first: that header is the contract's main one
            order = sorted(groups, key=lambda bp: (bp != c.billingperiod, bp))
            amount = Decimal(0)
            for bp in order:
                header_id = self.next("rinvoices")
                if not c.header_id:
                    c.header_id = header_id
                    self.book.recurring_invoice_ids[c.id] = header_id
                self.book.recurring_header_ids.append(header_id)
                self.book.headers_by_contract.setdefault(c.id, []).append(header_id)
                for line in groups[bp]:
                    amount += self._line_doc(c, line, header_id)
                self._header_doc(c, header_id, bp)
            c.charge = cents(amount)

    def _line_doc(self, c: _Contract, line: _Line, header_id: int) -> Decimal:
        line.id = self.next("rlines")
        self.book.recurring_line_ids.append(line.id)
        bp = line.billingperiod or c.billingperiod
        if bp == QUARTERLY:
            self.book.quarterly_line_ids.append(line.id)
        elif bp == ANNUAL:
            self.book.annual_line_ids.append(line.id)
        doc = {
            "id": line.id,
            "ihid": header_id,
            "contract_id": c.id,
            "_itemid": 100 + list(LINE_CATALOG).index(line.key),
            "item_code": line.code,
            "item_shortdescription": line.desc,
            "qty_order": line.qty,
            "unit_price": float(line.price),
            "startdate": format_ts(line.start or c.start),
            "enddate": format_ts(line.end) if line.end else None,
            "isinactive": False,
            "tax_code": 0,
            "sequenceid": len(self.docs["rlines"]) + 1,
        }
        if self.line_periods:
            doc["billingperiod"] = line.billingperiod
        self.docs["rlines"].append(doc)
        return line.price * line.qty * BILLING_MONTHS[c.billingperiod] / BILLING_MONTHS[bp]

    def _header_doc(self, c: _Contract, header_id: int, bp: int) -> None:
        nxt = add_months(month_start(self.today), BILLING_MONTHS[bp]) if c.status != PENDING else c.start
        self.docs["rinvoices"].append(
            {
                "id": header_id,
                "client_id": c.client_id,
                "contract_id": c.id,
                "is_recurring_invoice": True,
                "invoice_date": format_ts(month_start(self.today)),
                "nextcreationdate": format_ts(nxt),
                "startdate": format_ts(c.start),
                "enddate": format_ts(c.end) if c.end else None,
                "period": bp,  # the billing-period code (the same list as the contract's billingperiod)
                "period_type": 2,
                "disabled": c.status in (ON_HOLD,),
                "notes_1": "",
                "internal_note": "",
                "currency_code": "USD",
            }
        )

    def _invoice(
        self,
        c: _Contract,
        month: date,
        lines: list[tuple[_Contract, _Line, int]],
        when: date | None = None,
        credit_of: int | None = None,
    ) -> dict:
        iid = self.next("invoices")
        period_end = add_months(month, BILLING_MONTHS[c.billingperiod]) - timedelta(days=1)
        total = Decimal(0)
        for owner, line, qty in lines:
            sign = -1 if credit_of else 1
            net = cents(line.price * qty) * sign
            total += net
            self.docs["ilines"].append(
                {
                    "id": self.next("ilines"),
                    "ihid": iid,
                    "contract_id": owner.id,
                    "item_code": line.code,
                    "item_shortdescription": line.desc,
                    "qty_order": qty * sign,
                    "unit_price": float(line.price),
                    "net_amount": float(net),
                    "tax_amount": 0.0,
                    "total_price": float(net),
                    "recurring_invoice_id": owner.header_id,
                    "recurring_invoice_line_id": line.id,
                    "startdate": format_ts(month),
                    "enddate": format_ts(period_end),
                }
            )
        contracts = {o.id for o, _, _ in lines}
        date_ = when or month
        paid = date_ < self.today - timedelta(days=35)
        doc = {
            "id": iid,
            "invoicenumber": f"{'CN' if credit_of else 'INV'}-{iid:06d}",
            "client_id": c.client_id,
            "contract_id": c.id if len(contracts) == 1 else 0,
            "invoice_date": format_ts(date_),
            "duedate": format_ts(date_ + timedelta(days=30)),
            "period_start_date": format_ts(month),
            "period_end_date": format_ts(period_end),
            "recurring_invoice_id": c.header_id if len(contracts) == 1 else 0,
            "is_recurring_invoice": False,
            "posted": True,
            "voided": False,
            "total": float(total),
            "tax_total": 0.0,
            "amountpaid": float(total) if paid else 0.0,
            "amountdue": 0.0 if paid else float(total),
            "paymentstatus": 2 if paid else 0,
            "creditlinkedtoinvoiceid": credit_of or 0,
            "currency_code": "USD",
            "invoicetype": 1 if credit_of else 0,
        }
        self.docs["invoices"].append(doc)
        self.book.invoice_ids.append(iid)
        doc["_total"] = total
        return doc

    def invoices(self) -> None:
        book = self.book
        months = self.months
        billed: dict[int, list[dict]] = defaultdict(list)
        by_tag = {c.tag: c for c in self.contracts}
        mixed_pair = (by_tag.get("mixed_a"), by_tag.get("mixed_b"))
        for c in self.contracts:
            if c.type != RECURRING or not c.lines:
                continue
            for month in months:
                if c.tag == "mixed_b" and mixed_pair[0] is not None and month == months[4]:
                    continue  # billed on mixed_a's invoice below
                wrong_period = (c.tag == "billed_after_end" and month == months[3]) or (
                    c.tag == "billed_while_inactive" and month == months[3]
                )
                if not self._contract_billed(c, month) and not wrong_period:
                    continue
                due = [(c, line, line.qty) for line in c.lines if self._line_due(c, line, month)]
                if c.tag == "billed_after_end" and month == months[3]:
                    due = [(c, line, line.qty) for line in c.lines if line.key == "backup"][:1] or due[:1]
                if not due:
                    continue
                if c.tag == "missing_month" and month == months[2]:
                    total = sum((cents(line.price * q) for _, line, q in due), Decimal(0))
                    book.discrepancies.append(
                        Discrepancy(
                            "missing_month",
                            c.id,
                            None,
                            month,
                            add_months(month, 1) - timedelta(days=1),
                            total,
                            detail="no invoice for this billing month",
                        )
                    )
                    continue
                if c.tag == "under_billed" and month == months[3]:
                    i = next(k for k, (_, line, _) in enumerate(due) if line.key == "workstation")
                    _, line, qty = due[i]
                    short = max(1, min(3, qty - 1))
                    due[i] = (c, line, qty - short)
                    inv = self._invoice(c, month, due)
                    book.discrepancies.append(
                        Discrepancy(
                            "under_billed",
                            c.id,
                            inv["id"],
                            month,
                            add_months(month, 1) - timedelta(days=1),
                            cents(line.price * short),
                            line.id,
                            f"billed {qty - short} of {qty} {line.desc}",
                        )
                    )
                    billed[c.id].append(inv)
                    continue
                if c.tag == "mixed_a" and month == months[4] and mixed_pair[1] is not None:
                    other = mixed_pair[1]
                    due += [(other, line, line.qty) for line in other.lines if self._line_due(other, line, month)]
                    inv = self._invoice(c, month, due)
                    book.mixed_invoice_ids.append(inv["id"])
                    billed[c.id].append(inv)
                    billed[other.id].append(inv)
                    continue
                inv = self._invoice(c, month, due)
                billed[c.id].append(inv)
                period_end = add_months(month, BILLING_MONTHS[c.billingperiod]) - timedelta(days=1)
                if wrong_period:
                    kind = "billed_after_end" if c.tag == "billed_after_end" else "billed_while_inactive"
                    book.discrepancies.append(
                        Discrepancy(
                            kind,
                            c.id,
                            inv["id"],
                            month,
                            period_end,
                            inv["_total"],
                            due[0][1].id if kind == "billed_after_end" else None,
                            "contract ended " + c.end.isoformat()
                            if kind == "billed_after_end" and c.end
                            else "contract is On Hold",
                        )
                    )
                if c.tag == "duplicate_invoice" and month == months[4]:
                    dup = self._invoice(c, month, due, when=month + timedelta(days=2))
                    book.discrepancies.append(
                        Discrepancy(
                            "duplicate_invoice",
                            c.id,
                            dup["id"],
                            month,
                            period_end,
                            dup["_total"],
                            detail=f"same period as invoice {inv['id']}",
                        )
                    )
                if c.tag == "credited_invoice" and month == months[2]:
                    wrong = self._invoice(c, month, due, when=month + timedelta(days=3))
                    credit = self._invoice(c, month, due, when=month + timedelta(days=10), credit_of=wrong["id"])
                    book.credit_notes.append((wrong["id"], credit["id"]))
        bad = {d.contract_id for d in book.discrepancies}
        book.clean_contract_ids = sorted(cid for cid in billed if cid not in bad)

    # ------------------------------------------------------------------ tickets, time, prepay
    def _ticket(
        self, c: _Contract, when: datetime, hours: list[Decimal], billable: bool, prepay: bool, invoiced: bool = False
    ) -> None:
        rnd = self.rnd
        tid = self.next("tickets")
        closed = rnd.random() < 0.85 or invoiced
        slastate = rnd.choices(["I", "O", ""], [80, 15, 5])[0]
        total = sum(hours, Decimal(0))
        self.docs["tickets"].append(
            {
                "id": tid,
                "summary": rnd.choice(TICKET_SUMMARIES),
                "client_id": c.client_id,
                "client_name": self.client_docs[c.client_id]["name"],
                "site_id": c.client_id,
                "contract_id": c.id,
                "contract_ref": "",
                "sla_id": c.sla_id,
                "slastate": slastate,
                "timetaken": float(total),
                "dateoccurred": format_ts(when),
                "dateclosed": format_ts(when + timedelta(days=rnd.randint(0, 4), hours=rnd.randint(1, 8)))
                if closed
                else None,
                "status_id": 9 if closed else rnd.choice([1, 2, 3]),
                "tickettype_id": 1,
                "priority_id": rnd.randint(1, 4),
            }
        )
        self.book.ticket_ids.append(tid)
        if slastate == "O":
            self.book.breached_ticket_ids.append(tid)
        for k, h in enumerate(hours):
            aid = self.next("actions")
            at = when + timedelta(hours=2 * k + 1)
            charge = cents(h * RATE) if billable and not prepay else Decimal(0)
            doc = {
                "id": aid,
                "ticket_id": tid,
                "datetime": format_ts(at),
                "actiondatecreated": format_ts(at),
                "who_agentid": 1 + AGENTS.index(rnd.choice(AGENTS)),
                "outcome": "Remote Session",
                "note": "Worked on the issue remotely.",
                "timetaken": float(h),
                "actisbillable": billable,
                "actioncontractid": c.id,
                "action_contract_id": c.id,
                "actionchargehours": float(h) if billable and not prepay else 0.0,
                "actionchargeamount": float(charge),
                "actionprepayhours": float(h) if prepay else 0.0,
                "actionprepayamount": float(cents(h * RATE)) if prepay else 0.0,
                "actionnonchargehours": 0.0 if billable else float(h),
                "actioninvoicenumber": "",
            }
            self.docs["actions"].append(doc)
            if billable and not prepay:
                if invoiced:
                    self._pending_time.append((c, at, h, doc))
                else:
                    self.book.unbilled_action_ids.append(aid)
                    self.book.unbilled_amount[c.id] = self.book.unbilled_amount.get(c.id, Decimal(0)) + charge

    def _split(self, total: Decimal) -> list[Decimal]:
        out = []
        left = total
        while left > 0:
            h = min(left, _quarter(self.rnd, 0.25, 3))
            out.append(h)
            left -= h
        return out

    def _when(self, c: _Contract, lo_days: int, hi_days: int) -> datetime:
        earliest = max((self.today - c.start).days, 1)
        days = self.rnd.randint(min(lo_days, earliest), min(hi_days, earliest))
        d = self.today - timedelta(days=days)
        if c.end and d > c.end:
            d = c.end - timedelta(days=self.rnd.randint(0, 20))
        return datetime(d.year, d.month, d.day, self.rnd.randint(8, 16), self.rnd.choice([0, 15, 30, 45]))

    def tickets_and_time(self) -> None:
        rnd = self.rnd
        self._pending_time: list[tuple[_Contract, datetime, Decimal, dict]] = []
        for c in self.contracts:
            if c.status == PENDING:
                continue
            if c.type == PREPAID:
                chunks = self._split(c.use_hours)
                while chunks:
                    n = rnd.randint(1, 3)
                    take, chunks = chunks[:n], chunks[n:]
                    self._ticket(c, self._when(c, 1, 170), take, billable=True, prepay=True)
                for when, hours, expiry in c.topups:
                    self.docs["prepay"].append(
                        {
                            "id": self.next("prepay"),
                            "client_id": c.client_id,
                            "contract_id": c.id,
                            "date": format_ts(when),
                            "hours": float(hours),
                            "amount": float(cents(hours * RATE)),
                            "description": f"Prepaid hours top-up ({hours}h)",
                            "invoicedate": format_ts(when),
                            "invoice_number": f"PP-{c.id}-{when:%y%m}",
                            "invoice_id": "",
                            "expirydate": format_ts(expiry) if expiry else None,
                            "expirychecked": False,
                        }
                    )
            elif c.type == ADHOC:
                for _ in range(rnd.randint(1, 2)):
                    self._ticket(
                        c, self._when(c, 40, 170), self._split(_quarter(rnd, 0.5, 4)), True, False, invoiced=True
                    )
                for _ in range(rnd.randint(1, 2)):
                    self._ticket(c, self._when(c, 1, 25), self._split(_quarter(rnd, 0.5, 4)), True, False)
            else:
                n = {RECURRING: rnd.randint(0, 3), PROJECT: rnd.randint(1, 3), WARRANTY: rnd.randint(0, 2)}[c.type]
                billable = c.chargehours > 0
                for _ in range(n):
                    if c.end and c.end < self.today - timedelta(days=170):
                        break
                    self._ticket(c, self._when(c, 1, 170), self._split(_quarter(rnd, 0.25, 3)), billable, False)
        # labour invoices for the older Ad-Hoc time (one per contract and month)
        groups: dict[tuple[int, date], list[tuple[_Contract, datetime, Decimal, dict]]] = defaultdict(list)
        for item in self._pending_time:
            groups[(item[0].id, month_start(item[1].date()))].append(item)
        for (_, month), items in sorted(groups.items(), key=lambda kv: kv[0]):
            c = items[0][0]
            hours = sum((h for _, _, h, _ in items), Decimal(0))
            iid = self.next("invoices")
            number = f"INV-{iid:06d}"
            when = month_end(month) if month_end(month) < self.today else self.today
            total = cents(hours * RATE)
            self.docs["ilines"].append(
                {
                    "id": self.next("ilines"),
                    "ihid": iid,
                    "contract_id": c.id,
                    "item_code": "LAB-REMOTE",
                    "item_shortdescription": "Remote Support (labour)",
                    "qty_order": float(hours),
                    "unit_price": float(RATE),
                    "net_amount": float(total),
                    "tax_amount": 0.0,
                    "total_price": float(total),
                    "startdate": format_ts(month),
                    "enddate": format_ts(month_end(month)),
                }
            )
            self.docs["invoices"].append(
                {
                    "id": iid,
                    "invoicenumber": number,
                    "client_id": c.client_id,
                    "contract_id": c.id,
                    "invoice_date": format_ts(when),
                    "duedate": format_ts(when + timedelta(days=30)),
                    "period_start_date": None,
                    "period_end_date": None,
                    "recurring_invoice_id": 0,
                    "is_recurring_invoice": False,
                    "posted": True,
                    "voided": False,
                    "total": float(total),
                    "tax_total": 0.0,
                    "amountpaid": 0.0,
                    "amountdue": float(total),
                    "paymentstatus": 0,
                    "creditlinkedtoinvoiceid": 0,
                    "currency_code": "USD",
                    "invoicetype": 0,
                }
            )
            self.book.invoice_ids.append(iid)
            self.book.time_invoice_ids.append(iid)
            for _, _, _, doc in items:
                doc["actioninvoicenumber"] = number
                self.book.invoiced_action_ids.append(doc["id"])

    def licences(self) -> None:
        rnd = self.rnd
        m365: dict[int, tuple[_Contract, _Line]] = {}
        for c in self.contracts:
            if c.type == RECURRING and c.status == ACTIVE:
                for line in c.lines:
                    if line.key == "m365" and c.client_id not in m365:
                        m365[c.client_id] = (c, line)
        for n, (client_id, (_c, line)) in enumerate(sorted(m365.items())):
            lid = self.next("licences")
            count = line.qty
            if n % 5 == 1:
                count = line.qty + rnd.randint(1, 4)
                self.book.licence_mismatches.append((lid, line.id, count, line.qty))
            self.docs["licences"].append(
                self._licence(lid, client_id, "Microsoft 365 Business Premium", M365_SKU, count, Decimal("22.00"), True)
            )
            if rnd.random() < 0.5:
                name, sku, price = rnd.choice(OTHER_LICENCES)
                lid = self.next("licences")
                self.docs["licences"].append(self._licence(lid, client_id, name, sku, rnd.randint(2, 30), price, True))
        if self.docs["licences"]:
            lid = self.next("licences")
            client_id = sorted(m365)[0]
            self.docs["licences"].append(
                self._licence(
                    lid,
                    client_id,
                    "Microsoft 365 Business Basic (retired)",
                    "CFQ7TTC0LH18:0001",
                    0,
                    Decimal("6.00"),
                    False,
                )
            )
            self.book.inactive_licence_ids.append(lid)

    def _licence(self, lid: int, client_id: int, name: str, sku: str, count: int, price: Decimal, active: bool) -> dict:
        self.book.licence_ids.append(lid)
        start = add_months(month_start(self.today), -self.rnd.randint(2, 20))
        return {
            "id": lid,
            "type": 0,
            "name": name,
            "count": count,
            "client_id": client_id,
            "client_name": self.client_docs[client_id]["name"],
            "site_id": client_id,
            "price": float(price),
            "purchase_price": float(cents(price * Decimal("0.85"))),
            "billing_cycle": "Monthly",
            "term_duration": self.rnd.choice(["P1M", "P1Y"]),
            "status": "Active" if active else "Inactive",
            "autorenew": True,
            "start_date": format_ts(start),
            "end_date": None,
            "product_sku": sku,
            "vendor": "Microsoft" if "Microsoft" in name or "Exchange" in name else "Adobe",
            "manufacturer": "Microsoft" if "Adobe" not in name else "Adobe",
            "distributor": "Pax8",
            "is_active": active,
            "deleted": False,
            "notes": "",
        }

    # ------------------------------------------------------------------ contract documents
    def contract_docs(self) -> None:
        label = {
            RECURRING: ("MSA", "Managed Services"),
            PREPAID: ("PPH", "Prepaid Support Hours"),
            ADHOC: ("TM", "Time & Materials"),
            PROJECT: ("PRJ", "Project"),
            WARRANTY: ("WTY", "Hardware Warranty"),
        }
        for c in self.contracts:
            name = self.client_docs[c.client_id]["name"]
            code, text = label[c.type]
            nxt = add_months(month_start(self.today), 1) if c.type == RECURRING and c.status == ACTIVE else None
            doc = {
                "id": c.id,
                "client_id": c.client_id,
                "ref": f"{_abbr(name)}-{code}-{c.start.year}-{c.id}",
                "refextra": text,
                "start_date": format_ts(c.start),
                "end_date": format_ts(c.end) if c.end else None,
                "status": c.status,
                "active": c.status in ACTIVE_STATUSES,
                "contracttype": c.type,
                "billingperiod": c.billingperiod,
                "periodchargeamount": float(c.charge),
                "sla_id": c.sla_id,
                "site_id": c.client_id,
                "site_name": "Main Office",
                "user_id": 1,
                "user_name": AGENTS[0],
                "note": "",
                "previouscontract": c.previous,
                "termmonths": 12,
                "rollingcontract": c.end is None,
                "periodicinvoicenextdate": format_ts(nxt) if nxt else None,
                "next_invoice_date": format_ts(nxt) if nxt else None,
                "startbalance": float(c.startbalance),
                "chargehoursperperiod": float(c.chargehours),
                "allowprepay": c.type == PREPAID,
                "contract_prepayasamount": False,
                "prepayrecurringexpirymonths": 12 if c.tag == "prepaid_expiring" else 0,
                "billingdescription": 0,
                "subtype": 0,
                "numberofunitsfree": 0,
                "invoicedescription": text,
                "dontinvoice": c.type == WARRANTY,
                "last_modified": format_ts(datetime.combine(c.start, datetime.min.time())),
            }
            self.docs["contracts"].append(doc)
            book = self.book
            book.contract_ids.append(c.id)
            book.contracts_by_type.setdefault(CONTRACT_TYPE[c.type], []).append(c.id)
            book.contracts_by_status.setdefault(CONTRACT_STATUS[c.status], []).append(c.id)
            if c.chargehours:
                book.included_hours_contract_ids.append(c.id)
            if c.previous:
                book.renewed.append((c.previous, c.id))
            if c.status == ACTIVE and c.end and self.today < c.end <= self.today + timedelta(days=90):
                days = (c.end - self.today).days
                book.expiring.setdefault(30 if days <= 30 else 60 if days <= 60 else 90, []).append(c.id)
        for bucket in (30, 60, 90):
            self.book.expiring.setdefault(bucket, [])

    def prepaid_manifest(self) -> None:
        ledger: dict[int, list[dict]] = defaultdict(list)
        for row in self.docs["prepay"]:
            ledger[row["contract_id"]].append(row)
        actions: dict[int, list[dict]] = defaultdict(list)
        for a in self.docs["actions"]:
            actions[a["actioncontractid"]].append(a)
        docs = {d["id"]: d for d in self.docs["contracts"]}
        states: dict[str, list[int]] = {k: [] for k in ("healthy", "low", "exhausted", "expiring", "expired")}
        for c in self.contracts:
            if c.type != PREPAID:
                continue
            s = prepay_summary(docs[c.id], ledger[c.id], actions[c.id], self.today)
            self.book.prepaid_totals[c.id] = (cents(s.total), cents(s.used), cents(s.balance))
            if s.balance <= 0:
                states["exhausted"].append(c.id)
            elif s.balance <= s.total * Decimal("0.2"):
                states["low"].append(c.id)
            else:
                states["healthy"].append(c.id)
            if s.expiring_soon > 0:
                states["expiring"].append(c.id)
            if s.expired > 0:
                states["expired"].append(c.id)
        self.book.prepaid = states

    # ------------------------------------------------------------------ run
    def run(self) -> Book:
        self.lookups()
        self.slas()
        self.clients()
        if self.n_contracts:
            self.scripted()
            self.fillers()
        self.recurring_headers()
        self.invoices()
        self.tickets_and_time()
        self.contract_docs()
        self.licences()
        self.prepaid_manifest()
        for doc in self.docs["invoices"]:
            doc.pop("_total", None)
        tables = (
            "lookups",
            "slas",
            "clients",
            "contracts",
            "rinvoices",
            "rlines",
            "invoices",
            "ilines",
            "prepay",
            "tickets",
            "actions",
            "licences",
        )
        self.store.load({table: self.docs[table] for table in tables})
        return self.book


def generate(store: Store, clients: int = 25, contracts: int = 120, today: date | None = None, seed: int = 7,
             line_periods: bool = False) -> Book:
    """Fill ``store`` with a deterministic demo book and return its manifest. ``line_periods``:
    the 2024 document's shapes (one recurring invoice per contract, a billing period per line)
    instead of the 2026 document's (one recurring invoice per billing frequency)."""
    return _Generator(store, clients, contracts, today or date.today(), seed, line_periods).run()


def charges_export() -> str:
    """The demo book's distributor charges export (CSV): customers of the book spelled as a
    distributor spells them, with recurring, usage (Azure), prorate (owed and favourable),
    zero-amount and one-off lines, and one customer the book does not have."""
    return resources.files(__package__).joinpath("data", "charges.csv").read_text(encoding="utf-8")
