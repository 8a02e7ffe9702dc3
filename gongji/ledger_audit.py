"""An independent audit of a cluster's data directory: is every fen where it should be?

It reads the files (``gongji.ledger_snapshot``: plain SQL, read-only) and checks, from
the records alone, without the services' code:

- money is conserved in every region: what enrolment put in (the journal's opening
  balances) is in personal accounts (holds included), wallets, paid bills, paid premiums
  and inter-region positions;
- no account is negative, and every region's books balance and agree with its journal
  (double entry; every post or void settles a pending reserve of the same amount);
- no hold is still pending past its expiry (as of the newest timestamp in the files, or
  a time given);
- every transfer the clearinghouse committed was posted exactly once at its payer and
  credited exactly once at its payee, for the amount it committed; nothing was posted or
  credited for an aborted one, nor for one the clearinghouse does not know;
- a bill at a region of care is checked by its legs, each a transfer of its own from its
  payer's region to the region of care (posted, credited and cleared under its leg id,
  in the positions); a leg the clearinghouse released or that paid nothing holds nothing;
- inter-region positions agree pair by pair: what A holds towards B is the opposite of
  what B holds towards A, and both are what the clearinghouse committed between them
  (what settlement paid off them added back);
- the settlement between regional funds is whole (``gongji.settlement_audit``).

Safe on a running cluster: the clearinghouse is read before the regions and again after.
A decision in the first reading was final, so its effects are in the regions' files read
later; money the regions moved is checked against the second reading, which knows every
transfer they had acted on. Transfers not yet final in the first reading are in flight:
what the regions moved for them is set aside from the position checks.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gongji.ledger_snapshot import (
    BILLS_PAID,
    INTERREGION,
    PERSON,
    PREMIUMS_PAID,
    SETTLEMENT,
    WALLET,
    ClearinghouseSnapshot,
    Entry,
    LegRow,
    RegionSnapshot,
    TransferRow,
    locate,
    read_clearinghouse,
    read_region,
)
from gongji.settlement_audit import SETTLE_PREFIX, check_settlement

COMMITTED, ABORTED, COMMITTING = "committed", "aborted", "committing"
COPAY, WALLET_FLOW, PREMIUM, AWAY = "copay", "wallet", "premium", "away"

LEG_PAID = ("posted", "credited")
"""A leg's states (``clearinghouse.transfer_states.LegState``) once its payer posted it."""
LEG_PAID_NOTHING = ("not_held", "skipped", "not_posted", "released")
"""A leg's states in which its payer holds and moves nothing."""

KINDS: dict[str, str] = {
    "conservation": "a region's money does not add up to what enrolment put in",
    "negative_balance": "an account below zero",
    "journal": "books that do not balance or disagree with their journal",
    "repeated_entry": "a local journal entry recorded more than once",
    "expired_hold": "a hold still pending past its expiry",
    "hold_mismatch": "a hold record that disagrees with the journal",
    "credit_mismatch": "a credit record that disagrees with the journal or the transfer",
    "double_post": "a transfer posted more than once at its payer",
    "missing_post": "a committed transfer not posted at its payer",
    "double_credit": "a transfer credited more than once at its payee",
    "missing_credit": "a committed transfer not credited at its payee",
    "amount_mismatch": "payer, payee and clearinghouse disagree on an amount",
    "posted_for_aborted": "money posted for a transfer the clearinghouse aborted",
    "credited_for_aborted": "money credited for a transfer the clearinghouse aborted",
    "premature": "money moved before the clearinghouse decided it",
    "unknown_transfer": "money moved for a transfer the clearinghouse does not know there",
    "leg_still_held": "a leg of a bill away from home still held after it was released",
    "clearinghouse_record": "a committed record without its post, credit or amount",
    "clearing": "clearing entries that disagree with the committed transfers",
    "position_mismatch": "two regions' positions towards each other disagree",
    "bill_mismatch": "a bill whose parts disagree with the money moved for it",
    "premium_mismatch": "a paid premium that disagrees with the money moved for it",
    "settlement": "a window's settlement between regional funds that does not add up",
}
"""Every kind of violation, and what it means."""


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str
    transfer_id: str
    region: str
    detail: str

    def as_json(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "transfer_id": self.transfer_id,
            "region": self.region,
            "detail": self.detail,
        }

    def __str__(self) -> str:
        return f"{self.kind} {self.transfer_id or '-'} region {self.region or '-'}: {self.detail}"


@dataclass(slots=True)
class AuditResult:
    data_dir: str
    as_of_ms: int
    violations: list[Violation] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)
    money: Counter[str] = field(default_factory=Counter)
    """Sums over all regions, in fen."""

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "violations": [v.as_json() for v in self.violations],
            "checked": dict(self.checked),
            "money": dict(self.money),
            "as_of_ms": self.as_of_ms,
            "data_dir": self.data_dir,
        }

    def verdict(self) -> str:
        c = self.checked
        scope = (
            f"{c['regions']} regions, {c['transfers']} transfers ({c['committed']} committed,"
            f" {c['aborted']} aborted, {c['in_flight']} in flight), {c['journal_entries']}"
            f" journal entries"
        )
        if self.ok:
            return f"audit OK: {scope}; money conserved ({self.money['opening']} fen enrolled)"
        kinds = Counter(v.kind for v in self.violations)
        listed = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
        count = len(self.violations)
        return f"audit FAILED: {count} violation{'s' * (count != 1)} ({listed}) in {scope}"


class PersonTags:
    """Short keyed hashes of person numbers (``psn#3fa9c1``): a report never names a person.

    The key is new for every audit unless given: the same person has the same tag within
    one report, and tags cannot be matched across reports or looked up.
    """

    def __init__(self, key: bytes | None = None) -> None:
        self.key = os.urandom(16) if key is None else key

    def tag(self, psn_no: str) -> str:
        digest = hmac.new(self.key, psn_no.encode(), hashlib.sha256).hexdigest()
        return f"psn#{digest[:6]}"

    def account(self, account: str) -> str:
        for prefix in (PERSON, WALLET):
            if account.startswith(prefix):
                return prefix + self.tag(account[len(prefix) :])
        return account

    def transfer(self, transfer_id: str) -> str:
        """Enrolment entries are named after the person (``open:<psn_no>``)."""
        if transfer_id.startswith("open:"):
            return "open:" + self.tag(transfer_id[len("open:") :])
        return transfer_id


@dataclass(slots=True)
class _PayerSide:
    """What one region's journal says it did as the payer of one transfer."""

    payee_region: str
    posts: int = 0
    posted_fen: int = 0
    open_pending_fen: int = 0


@dataclass(slots=True)
class _PayeeSide:
    """What one region's journal says it did as the payee of one transfer."""

    payer_region: str
    target: str
    credits: int = 0
    credited_fen: int = 0


class _Audit:
    def __init__(
        self,
        before: ClearinghouseSnapshot,
        regions: dict[str, RegionSnapshot],
        after: ClearinghouseSnapshot,
        result: AuditResult,
        tags: PersonTags,
    ) -> None:
        self.before = before
        self.regions = regions
        self.after = after
        self.first = _by_payer(before)
        """The first reading's transfers as the regions see them (a bill away from home
        as its legs); ``second``, the later reading's."""
        self.second = _by_payer(after)
        self.result = result
        self.tags = tags
        self.payers: dict[str, dict[str, _PayerSide]] = {}
        self.payees: dict[str, dict[str, _PayeeSide]] = {}
        self.settled: dict[tuple[str, str], int] = defaultdict(int)
        """(A, B) -> what settlement took off A's position towards B (``interregion:B``)."""

    def fail(self, kind: str, transfer_id: str, region: str, detail: str) -> None:
        assert kind in KINDS, kind
        self.result.violations.append(
            Violation(kind, self.tags.transfer(transfer_id), region, detail)
        )

    def run(self) -> None:
        checked = self.result.checked
        checked["regions"] = len(self.regions)
        for t in self.before.transfers.values():
            state = t.state if t.state in (COMMITTED, ABORTED) else "in_flight"
            checked[state] += 1
        checked["transfers"] = len(self.before.transfers)
        checked["legs"] = len(self.before.legs)
        for _, region in sorted(self.regions.items()):
            self._books(region)
            self._moves(region)
            self._holds(region)
            self._credits(region)
            self._bills(region)
            self._premiums(region)
        self._money_moved()
        self._legs_released()
        self._decisions()
        self._clearing()
        self._positions()
        self._settlement()

    # --- one region's books ---

    def _books(self, r: RegionSnapshot) -> None:
        code, checked = r.code, self.result.checked
        checked["accounts"] += len(r.accounts)
        checked["journal_entries"] += r.journal_entries
        sums = [0, 0, 0, 0]
        for account in r.accounts.values():
            sums = [
                total + value for total, value in zip(sums, account.totals.as_list(), strict=True)
            ]
        debits_pending, debits_posted, credits_pending, credits_posted = sums
        for what, debits, credits in (
            ("posted", debits_posted, credits_posted),
            ("pending", debits_pending, credits_pending),
        ):
            if debits != credits:
                detail = f"{what} debits {debits} != {what} credits {credits}"
                self.fail("journal", "", code, detail)
        for id_, account in sorted(r.accounts.items()):
            label = self.tags.account(id_)
            expected = r.journal_totals.get(id_)
            actual = account.totals.as_list()
            if (expected.as_list() if expected else [0, 0, 0, 0]) != actual:
                said = expected.as_list() if expected else "nothing"
                self.fail("journal", "", code, f"{label}: totals {actual}, the journal {said}")
            if any(value < 0 for value in actual):
                self.fail("negative_balance", "", code, f"{label}: a negative total {actual}")
            overdraft_free = account.no_overdraft or id_.startswith((PERSON, WALLET))
            if overdraft_free and account.totals.available < 0:
                available = account.totals.available
                self.fail("negative_balance", "", code, f"{label}: available {available} fen")
        for id_ in sorted(r.journal_totals.keys() - r.accounts.keys()):
            label = self.tags.account(id_)
            self.fail("journal", "", code, f"{label} is in the journal but is no account")
        for tid, phase, debit, credit, times in r.repeated:
            accounts = f"{self.tags.account(debit)} -> {self.tags.account(credit)}"
            self.fail("repeated_entry", tid, code, f"{phase} {accounts} journaled {times} times")
        self._conservation(r)

    def _conservation(self, r: RegionSnapshot) -> None:
        held = accounts = wallets = positions = settled = 0
        for id_, account in r.accounts.items():
            t = account.totals
            if id_.startswith(PERSON):
                accounts += t.posted_balance
                held += t.debits_pending
            elif id_.startswith(WALLET):
                wallets += t.posted_balance
                held += t.debits_pending  # a leg of a bill at a region of care
            elif id_.startswith(INTERREGION):
                positions += t.posted_balance
            elif id_.startswith(SETTLEMENT):
                settled += t.posted_balance
        bills = self._balance(r, BILLS_PAID)
        premiums = self._balance(r, PREMIUMS_PAID)
        money = self.result.money
        for name, amount in (
            ("opening", r.opening_fen),
            ("accounts", accounts),
            ("held", held),
            ("wallets", wallets),
            ("bills_paid", bills),
            ("premiums_paid", premiums),
            ("positions", positions),
            ("settled", settled),
        ):
            money[name] += amount
        found = accounts + wallets + bills + premiums + positions + settled
        self.result.checked["conservation"] += 1
        if r.opening_fen != found:
            self.fail(
                "conservation",
                "",
                r.code,
                f"enrolment put in {r.opening_fen} fen; found {found}: accounts {accounts}"
                f" (held {held}) + wallets {wallets} + bills paid {bills} + premiums paid"
                f" {premiums} + positions {positions} + settled {settled}",
            )

    @staticmethod
    def _balance(r: RegionSnapshot, account: str) -> int:
        found = r.accounts.get(account)
        return 0 if found is None else found.totals.posted_balance

    # --- inter-region entries: the two sides of every transfer ---

    def _moves(self, r: RegionSnapshot) -> None:
        """Sort each inter-region journal row to its side; check the two phases."""
        payers = self.payers.setdefault(r.code, {})
        payees = self.payees.setdefault(r.code, {})
        pending: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for e in r.interregion:
            if e.transfer_id.startswith(SETTLE_PREFIX) and e.phase == "posted":
                # Settlement pays a window's position off (``gongji.settlement_audit``).
                paid_off = e.debit if e.debit.startswith(INTERREGION) else e.credit
                towards = paid_off[len(INTERREGION) :]
                signed = e.amount_fen if paid_off == e.debit else -e.amount_fen
                self.settled[(r.code, towards)] += signed
            # A payer's hold is on a personal account, or (a leg of a bill at a region of
            # care) on the beneficiary's wallet.
            elif e.debit.startswith((PERSON, WALLET)) and e.credit.startswith(INTERREGION):
                side = payers.setdefault(e.transfer_id, _PayerSide(e.credit[len(INTERREGION) :]))
                self._payer_entry(r.code, e, side, pending[(e.transfer_id, e.debit, e.credit)])
            elif e.debit.startswith(INTERREGION) and e.phase == "posted":
                credit = payees.setdefault(
                    e.transfer_id, _PayeeSide(e.debit[len(INTERREGION) :], e.credit)
                )
                credit.credits += 1
                credit.credited_fen += e.amount_fen
            else:
                accounts = f"{self.tags.account(e.debit)} -> {self.tags.account(e.credit)}"
                self.fail(
                    "journal", e.transfer_id, r.code, f"an unexpected {e.phase} entry {accounts}"
                )
        for tid, side in sorted(payers.items()):
            if side.posts > 1:
                self.fail(
                    "double_post",
                    tid,
                    r.code,
                    f"posted {side.posts} times at the payer ({side.posted_fen} fen in all)",
                )
        for tid, credit in sorted(payees.items()):
            if credit.credits > 1:
                self.fail(
                    "double_credit",
                    tid,
                    r.code,
                    f"credited {credit.credits} times at the payee ({credit.credited_fen} fen)",
                )

    def _payer_entry(self, code: str, e: Entry, side: _PayerSide, open_: list[int]) -> None:
        """TigerBeetle's two phases: a post or void settles one pending of the same amount."""
        if e.phase == "pending":
            open_.append(e.amount_fen)
            side.open_pending_fen += e.amount_fen
            return
        if e.phase in ("post", "void"):
            if e.amount_fen not in open_:
                reserved = f"pending {open_}" if open_ else "nothing pending"
                self.fail(
                    "journal",
                    e.transfer_id,
                    code,
                    f"{e.phase} of {e.amount_fen} fen with {reserved} (journal seq {e.seq})",
                )
            else:
                open_.remove(e.amount_fen)
                side.open_pending_fen -= e.amount_fen
            if e.phase == "void":
                return
        side.posts += 1  # a post, or a posted transfer (a repair)
        side.posted_fen += e.amount_fen

    def _holds(self, r: RegionSnapshot) -> None:
        as_of = self.result.as_of_ms
        payers = self.payers[r.code]
        self.result.checked["holds"] += len(r.holds)
        for tid, hold in sorted(r.holds.items()):
            side = payers.get(tid)
            posted = side.posted_fen if side else 0
            pending = side.open_pending_fen if side else 0
            if hold.state == "pending" and hold.expires_at_ms <= as_of:
                late = as_of - hold.expires_at_ms
                self.fail(
                    "expired_hold",
                    tid,
                    r.code,
                    f"{hold.held_fen} fen still pending {late} ms after its expiry",
                )
            expected = {
                "posted": (hold.held_fen, 0),
                "pending": (0, hold.held_fen),
                "prepared": (0, hold.held_fen),
            }.get(hold.state, (0, 0))
            wrong_way = side is not None and side.payee_region != hold.payee_region
            if (posted, pending) != expected or wrong_way:
                towards = f" towards {side.payee_region}" if side else ""
                self.fail(
                    "hold_mismatch",
                    tid,
                    r.code,
                    f"hold {hold.state} {hold.held_fen} fen for {hold.payee_region}; the journal"
                    f" posted {posted} and holds {pending} pending{towards}",
                )
        for tid in sorted(payers.keys() - r.holds.keys()):
            side = payers[tid]
            self.fail(
                "hold_mismatch",
                tid,
                r.code,
                f"the journal moved {side.posted_fen + side.open_pending_fen} fen towards"
                f" {side.payee_region} without a hold record",
            )

    def _credits(self, r: RegionSnapshot) -> None:
        payees = self.payees[r.code]
        self.result.checked["credits"] += len(r.credits)
        targets = {COPAY: BILLS_PAID, PREMIUM: PREMIUMS_PAID, AWAY: BILLS_PAID}
        for tid, credit in sorted(r.credits.items()):
            side = payees.get(tid)
            target = side.target if side else ""
            if credit.flow == WALLET_FLOW:
                right_target = target.startswith(WALLET)
            else:
                right_target = target == targets.get(credit.flow, "")
            if side is None or side.credited_fen != credit.amount_fen or not right_target:
                journal = (
                    f"{side.credited_fen} fen into {self.tags.account(side.target)}"
                    if side
                    else "nothing"
                )
                self.fail(
                    "credit_mismatch",
                    tid,
                    r.code,
                    f"credit of {credit.amount_fen} fen ({credit.flow}) from {credit.payer_region};"
                    f" the journal credited {journal}",
                )
            elif side.payer_region != credit.payer_region:
                self.fail(
                    "credit_mismatch",
                    tid,
                    r.code,
                    f"credit from {credit.payer_region}; the journal debits {side.payer_region}",
                )
        for tid in sorted(payees.keys() - r.credits.keys()):
            side = payees[tid]
            self.fail(
                "credit_mismatch",
                tid,
                r.code,
                f"the journal credited {side.credited_fen} fen from {side.payer_region}"
                " without a credit record",
            )

    def _bills(self, r: RegionSnapshot) -> None:
        """A co-payment's parts: own account and wallet paid here, the rest by the co-payer."""
        self.result.checked["bills"] += len(r.bills)
        for tid, bill in sorted(r.bills.items()):
            own = r.local_parts.get(f"{tid}/own", 0)
            wallet = r.local_parts.get(f"{tid}/wallet", 0)
            credit = r.credits.get(tid)
            credited = 0 if credit is None else credit.amount_fen
            problems = []
            if (own, wallet) != (bill.own_paid_fen, bill.wallet_paid_fen):
                problems.append(
                    f"own {bill.own_paid_fen} and wallet {bill.wallet_paid_fen} fen;"
                    f" the journal paid {own} and {wallet}"
                )
            if bill.state == "settled" and credited != bill.paid_fen:
                problems.append(f"settled {bill.paid_fen} fen by a co-payer; credited {credited}")
            if bill.state != "settled" and credit is not None:
                problems.append(f"not settled, yet {credited} fen was credited")
            for problem in problems:
                self.fail("bill_mismatch", tid, r.code, f"bill {problem}")

    def _premiums(self, r: RegionSnapshot) -> None:
        self.result.checked["premiums"] += len(r.premiums_paid)
        for tid in sorted(r.premiums_paid.keys() | r.premium_entries.keys()):
            recorded = r.premiums_paid.get(tid)
            moved = r.premium_entries.get(tid)
            if recorded != moved:
                said = "no paid premium" if recorded is None else f"premium paid {recorded} fen"
                self.fail(
                    "premium_mismatch", tid, r.code, f"{said}; the journal moved {moved or 0} fen"
                )

    # --- money the regions moved, against the clearinghouse (its later reading) ---

    def _money_moved(self) -> None:
        transfers = self.second
        for code, payers in sorted(self.payers.items()):
            for tid, side in sorted(payers.items()):
                if side.posts == 0 and side.open_pending_fen == 0:
                    continue  # reserved and released: no money moved
                t = transfers.get(tid)
                party = t is not None and (t.payer_region, t.payee_region) == (
                    code,
                    side.payee_region,
                )
                where = (
                    f"posted {side.posted_fen} fen towards {side.payee_region}"
                    if side.posts
                    else f"holds {side.open_pending_fen} fen for {side.payee_region}"
                )
                if t is None or not party:
                    known = self._known(tid, t)
                    self.fail("unknown_transfer", tid, code, f"{where}; the clearinghouse {known}")
                elif side.posts == 0:
                    continue  # a pending hold: released on abort or expiry (see expired_hold)
                elif t.state == ABORTED:
                    self.fail("posted_for_aborted", tid, code, f"{where}; aborted")
                elif t.state not in (COMMITTING, COMMITTED):
                    self.fail("premature", tid, code, f"{where}; the clearinghouse is {t.state}")
        for code, payees in sorted(self.payees.items()):
            for tid, credit in sorted(payees.items()):
                t = transfers.get(tid)
                party = t is not None and (t.payer_region, t.payee_region) == (
                    credit.payer_region,
                    code,
                )
                where = f"credited {credit.credited_fen} fen from {credit.payer_region}"
                if t is None or not party:
                    known = self._known(tid, t)
                    self.fail("unknown_transfer", tid, code, f"{where}; the clearinghouse {known}")
                elif t.state == ABORTED:
                    self.fail("credited_for_aborted", tid, code, f"{where}; aborted")
                elif not (t.state == COMMITTED or (t.state == COMMITTING and t.payer_posted)):
                    self.fail(
                        "premature", tid, code, f"{where}; the payer's post is not recorded yet"
                    )

    def _known(self, tid: str, t: TransferRow | None) -> str:
        if t is not None:
            return f"has it {_parties(t)}"
        if tid in self.after.transfers:
            return "has it as a bill away from home, paid by its legs"
        return "does not know it"

    def _legs_released(self) -> None:
        """A leg the clearinghouse saw released (or that never paid) holds nothing at its
        payer: a leg's hold is prepared and never expires by itself."""
        for leg_id, leg in sorted(self.before.legs.items()):
            side = self.payers.get(leg.region, {}).get(leg_id)
            if leg.state in LEG_PAID_NOTHING and side is not None and side.open_pending_fen:
                self.fail(
                    "leg_still_held",
                    leg_id,
                    leg.region,
                    f"leg {leg.state} at the clearinghouse; {side.open_pending_fen} fen still"
                    f" held for {side.payee_region}",
                )

    # --- the clearinghouse's decisions (its first reading), in the regions ---

    def _decisions(self) -> None:
        for tid, t in sorted(self.first.items()):
            if t.state != COMMITTED:
                continue
            if not (t.payer_posted and t.payee_credited and 0 < t.posted_fen <= t.held_fen):
                self.fail(
                    "clearinghouse_record",
                    tid,
                    "",
                    f"committed with payer_posted={int(t.payer_posted)},"
                    f" payee_credited={int(t.payee_credited)}, held {t.held_fen},"
                    f" posted {t.posted_fen} fen",
                )
            self._committed_at_payer(t)
            self._committed_at_payee(t)

    def _committed_at_payer(self, t: TransferRow) -> None:
        code, tid = t.payer_region, t.transfer_id
        what = f"committed {t.posted_fen} fen from {code} to {t.payee_region}"
        if code not in self.regions:
            self.fail("missing_post", tid, code, f"{what}; no file of region {code}")
            return
        side = self.payers[code].get(tid)
        if side is None or side.posts == 0:
            self.fail("missing_post", tid, code, f"{what}; the payer posted nothing")
        elif side.posts == 1 and side.posted_fen != t.posted_fen:
            self.fail("amount_mismatch", tid, code, f"{what}; the payer posted {side.posted_fen}")

    def _committed_at_payee(self, t: TransferRow) -> None:
        code, tid = t.payee_region, t.transfer_id
        what = f"committed {t.posted_fen} fen from {t.payer_region} to {code}"
        if code not in self.regions:
            self.fail("missing_credit", tid, code, f"{what}; no file of region {code}")
            return
        credit = self.payees[code].get(tid)
        if credit is None:
            self.fail("missing_credit", tid, code, f"{what}; the payee credited nothing")
        elif credit.credits == 1 and credit.credited_fen != t.posted_fen:
            self.fail(
                "amount_mismatch", tid, code, f"{what}; the payee credited {credit.credited_fen}"
            )
        record = self.regions[code].credits.get(tid)
        if record is not None and record.flow != t.flow:
            self.fail(
                "credit_mismatch", tid, code, f"credited as {record.flow}; the transfer is {t.flow}"
            )

    def _clearing(self) -> None:
        """Every committed cross-region transfer is cleared once, as committed."""
        transfers, entries = self.first, self.before.clearing
        self.result.checked["clearing_entries"] += len(entries)
        for tid in sorted(transfers.keys() | entries.keys()):
            t, entry = transfers.get(tid), entries.get(tid)
            crosses = t is not None and t.state == COMMITTED and t.payer_region != t.payee_region
            if crosses and entry is None:
                assert t is not None
                self.fail("clearing", tid, "", f"committed {_parties(t)}; never cleared")
            elif entry is not None and (
                t is None
                or not crosses
                or (entry.payer_region, entry.payee_region, entry.amount_fen)
                != (t.payer_region, t.payee_region, t.posted_fen)
            ):
                has = "nothing" if t is None else f"it {t.state} {_parties(t)}, {t.posted_fen} fen"
                self.fail(
                    "clearing",
                    tid,
                    "",
                    f"cleared {entry.amount_fen} fen from {entry.payer_region} to"
                    f" {entry.payee_region}; the clearinghouse has {has}",
                )

    # --- positions, pair by pair ---

    def _positions(self) -> None:
        """What A holds towards B (inter-region account ``interregion:B`` in A's books, what A
        owes B) is the opposite of what B holds towards A, and is what the clearinghouse
        committed from A to B less what it committed from B to A. Money moved for transfers
        in flight (not final in the clearinghouse's first reading) is set aside."""
        final = {tid for tid, t in self.first.items() if t.state in (COMMITTED, ABORTED)}
        committed: Counter[tuple[str, str]] = Counter()
        for t in self.first.values():
            if t.state == COMMITTED:
                committed[(t.payer_region, t.payee_region)] += t.posted_fen
        held: dict[tuple[str, str], int] = defaultdict(int)
        in_flight = 0
        for code, r in self.regions.items():
            for id_, account in r.accounts.items():
                if id_.startswith(INTERREGION):
                    held[(code, id_[len(INTERREGION) :])] += account.totals.posted_balance
        for pair, amount in self.settled.items():
            held[pair] += amount
        for code in self.regions:
            for tid, side in self.payers[code].items():
                if tid not in final:
                    held[(code, side.payee_region)] -= side.posted_fen
                    in_flight += side.posted_fen
            for tid, credit in self.payees[code].items():
                if tid not in final:
                    held[(code, credit.payer_region)] += credit.credited_fen
                    in_flight -= credit.credited_fen
        self.result.money["in_flight"] = in_flight
        pairs = {(min(x, y), max(x, y)) for x, y in [*held, *committed]}
        for a, b in sorted(pairs):
            self.result.checked["position_pairs"] += 1
            expected = committed[(a, b)] - committed[(b, a)]
            sides = [(a, b, expected)] if a == b else [(a, b, expected), (b, a, -expected)]
            wrong = [x for x, y, e in sides if x in self.regions and held[(x, y)] != e]
            if wrong:
                holds = "; ".join(f"{x} holds {held[(x, y)]} towards {y}" for x, y, _ in sides)
                between = "" if a == b else f" and {committed[(b, a)]} fen {b} -> {a}"
                self.fail(
                    "position_mismatch",
                    "",
                    wrong[0],
                    f"{holds}; the clearinghouse committed {committed[(a, b)]} fen {a} -> {b}"
                    + between,
                )

    # --- settlement between regional funds ---

    def _settlement(self) -> None:
        """Read against the first reading: a settlement it marked booked is booked in the
        regions' files, which were read after it."""
        regions = {
            code: r.settlement for code, r in self.regions.items() if r.settlement is not None
        }
        self.result.checked["settlements"] += len(self.before.settlement.issued)
        for p in check_settlement(self.before.settlement, regions):
            where = f"window {p.window}: " if p.window else ""
            self.fail("settlement", "", p.region, where + p.detail)


def _by_payer(snap: ClearinghouseSnapshot) -> dict[str, TransferRow]:
    """The transfers as their payers and payees book them: a bill at a region of care is
    not one, but its legs are, each from its payer's region to the region of care."""
    legs_of: dict[str, list[LegRow]] = defaultdict(list)
    for leg in snap.legs.values():
        legs_of[leg.transfer_id].append(leg)
    transfers = {tid: t for tid, t in snap.transfers.items() if tid not in legs_of}
    for tid, legs in legs_of.items():
        parent = snap.transfers.get(tid)
        if parent is None:
            continue  # a leg without its transfer: what it moved is unknown_transfer
        for leg in legs:
            transfers[leg.leg_id] = _leg_as_transfer(parent, leg)
    return transfers


def _leg_as_transfer(parent: TransferRow, leg: LegRow) -> TransferRow:
    """A leg as a transfer of its own: decided as its bill was, except that a leg which
    paid nothing (refused, skipped, not posted) is, for its payer, as if aborted."""
    paid = leg.state in LEG_PAID
    state = parent.state
    if state in (COMMITTED, COMMITTING) and leg.state in LEG_PAID_NOTHING:
        state = ABORTED
    return TransferRow(
        leg.leg_id,
        parent.flow,
        state,
        leg.region,
        parent.payee_region,
        leg.held_fen,
        leg.posted_fen,
        paid,
        leg.state == "credited" or (paid and parent.payee_credited),
    )


def _parties(t: TransferRow) -> str:
    return f"from {t.payer_region or '?'} to {t.payee_region}"


def audit_data_dir(
    data_dir: Path, *, as_of_ms: int | None = None, person_key: bytes | None = None
) -> AuditResult:
    """Audit every file of a cluster's data directory (``SnapshotError`` if it is none).

    ``as_of_ms``: the time against which pending holds are judged expired; by default the
    newest timestamp in the files (right for a cluster that has gone quiet).
    """
    files = locate(data_dir)
    before = read_clearinghouse(files.clearinghouse)
    regions = {code: read_region(code, path) for code, path in files.regions.items()}
    after = read_clearinghouse(files.clearinghouse)
    newest = max([before.newest_ms, after.newest_ms, *(r.newest_ms for r in regions.values())])
    result = AuditResult(str(data_dir), newest if as_of_ms is None else as_of_ms)
    _Audit(before, regions, after, result, PersonTags(person_key)).run()
    return result
