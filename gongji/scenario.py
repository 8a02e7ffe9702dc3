"""Scenario files: regions and their policies, the population to draw, the requests to
send and a roll-out schedule, read from TOML (keys documented in ``scenarios/README.md``).

Loading is all or nothing: every problem in the file is collected and reported together
in one ``ScenarioError`` naming the file, the entry and the field, and nothing is
returned until the whole file is valid, so no run starts half-configured.

The builders are pure: the same scenario gives the same population and requests.
"""

from __future__ import annotations

import difflib
import math
import os
import random
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from contracts.effects import Outgoing
from contracts.identifiers import CLEARINGHOUSE, is_region_code
from contracts.operations import (
    RequestBinding,
    RequestPremiumPayment,
    RequestWalletTransfer,
    SetRegionEnabled,
    SubmitBill,
)
from contracts.policy import NATIONAL_WALLET_MAX_PER_TRANSFER_FEN, Policy
from contracts.vocabulary import SCOPE_RELATIONSHIPS, Insurance, PaymentOrder, Relationship, Scope
from gongji.population import (
    Draws,
    Person,
    Population,
    RegionSpec,
    draw_bills,
    draw_population,
    secret_of,
)

SCENARIO_DIR = Path(__file__).parent / "scenarios"
"""Where the scenarios shipped with the package live (package data)."""
DEFAULT_SCENARIO_PATH = SCENARIO_DIR / "default.toml"
ROLLOUT_SCENARIO_PATH = SCENARIO_DIR / "rollout.toml"

MIX_TOLERANCE = 1e-9
"""How far from 1 the shares of a mix may sum (float rounding, not a second chance)."""
MAX_PERSONS_PER_REGION = 999_999
"""Person numbers carry a 6-digit serial per region."""
MAX_BINDINGS_PER_BENEFICIARY = 10


class ScenarioError(ValueError):
    """A scenario file that cannot be used; ``problems`` lists every problem found."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


# --- the scenario records ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FenRange:
    """An inclusive range of amounts in fen."""

    min: int
    max: int


@dataclass(frozen=True, slots=True)
class InsuranceMix:
    """Shares of the persons of a region by insurance (they sum to 1)."""

    employee: float = 0.6
    resident: float = 0.3
    none: float = 0.1


DEFAULT_RELATIONSHIP_MIX: tuple[tuple[Relationship, float], ...] = (
    (Relationship.SPOUSE, 0.3),
    (Relationship.PARENT, 0.25),
    (Relationship.CHILD, 0.25),
    (Relationship.SIBLING, 0.1),
    (Relationship.GRANDPARENT, 0.05),
    (Relationship.GRANDCHILD, 0.05),
)


@dataclass(frozen=True, slots=True)
class PopulationSpec:
    """The population to draw for every region of a scenario."""

    persons_per_region: int = 100
    insurance_mix: InsuranceMix = field(default_factory=InsuranceMix)
    zero_balance_share: float = 0.1
    """Share of employee-insured persons whose personal account is empty."""
    balance_fen: FenRange = field(default_factory=lambda: FenRange(100, 500_000))
    """Opening balance of the other employee-insured persons."""
    beneficiary_share: float = 0.75
    """Share of insured persons who get at least one co-payer."""
    bindings_per_beneficiary: tuple[tuple[int, float], ...] = ((1, 0.7), (2, 0.3))
    """(number of co-payers, share), ascending by number."""
    cross_region_share: float = 0.8
    """Share of co-payers drawn from another region than the beneficiary's."""
    relationship_mix: tuple[tuple[Relationship, float], ...] = DEFAULT_RELATIONSHIP_MIX
    """Drawn among the relationships both regions' policies allow (renormalised)."""
    unregistered_copayer_share: float = 0.03
    """Share of beneficiaries bound to a co-payer in ``unregistered_region``."""
    unregistered_region: str = "650100"
    """A real region code outside the scenario: its co-payers give ``UNKNOWN_REGION``."""

    def draws(self) -> Draws:
        """The population generator's parameters for this spec."""
        mix = self.insurance_mix
        upper, cumulative = [], 0.0
        for count, share in self.bindings_per_beneficiary:
            cumulative += share
            upper.append((count, cumulative))
        # The last bucket takes every draw, whatever the rounding of the sum.
        upper[-1] = (upper[-1][0], math.inf)
        return Draws(
            employee_below=mix.employee,
            resident_below=mix.employee + mix.resident,
            zero_balance_share=self.zero_balance_share,
            balance_min_fen=self.balance_fen.min,
            balance_max_fen=self.balance_fen.max,
            unbound_share=1.0 - self.beneficiary_share,
            unregistered_share=self.unregistered_copayer_share,
            unregistered_region=self.unregistered_region,
            bindings_upper=tuple(upper),
            cross_region_share=self.cross_region_share,
            relationship_weights=self.relationship_mix,
        )


@dataclass(frozen=True, slots=True)
class BillSpec:
    """The requests of a run: bills, and for the demo wallet transfers, premium payments
    and binding requests, a share of them deliberately wrong."""

    count: int = 400
    amount_fen: FenRange = field(default_factory=lambda: FenRange(1_000, 300_000))
    bound_share: float = 0.8
    """Share of bills for a beneficiary with a co-payer bound (the rest: anyone)."""
    wallet_transfers: int = 0
    wallet_amount_fen: FenRange = field(
        default_factory=lambda: FenRange(1_000, NATIONAL_WALLET_MAX_PER_TRANSFER_FEN)
    )
    """Drawn, then cut to both regions' per-transfer limits (except the over-limit ones)."""
    premium_payments: int = 0
    premium_year: int = 2025
    binding_requests: int = 0
    wrong_secret_share: float = 0.0
    """Of wallet transfers, premium payments and binding requests: ``IDENTITY_CHECK_FAILED``."""
    over_limit_share: float = 0.0
    """Of wallet transfers: above both regions' per-transfer limit (``LIMIT_EXCEEDED``)."""
    duplicate_premium_share: float = 0.0
    """Of premium payments: a second payment of a person and year (``PREMIUM_ALREADY_PAID``)."""
    policy_disagreement_share: float = 0.0
    """Of binding requests: a relationship one region's scope refuses (``POLICY_DISAGREEMENT``)."""


@dataclass(frozen=True, slots=True)
class RolloutStep:
    """After ``after_bills`` bills have been submitted, enable and disable regions."""

    after_bills: int
    enable: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario (see ``load_scenario``)."""

    name: str
    description: str
    seed: int
    regions: tuple[RegionSpec, ...]
    population: PopulationSpec
    bills: BillSpec
    rollout: tuple[RolloutStep, ...] = ()

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.regions]

    def region(self, code: str) -> RegionSpec:
        for r in self.regions:
            if r.code == code:
                return r
        raise KeyError(code)

    def enabled_after(self, bills_done: int) -> frozenset[str]:
        """The regions enabled once ``bills_done`` bills are submitted and every roll-out
        step due by then has been applied."""
        enabled = {r.code for r in self.regions if r.enabled}
        for step in self.rollout:
            if step.after_bills <= bills_done:
                enabled |= set(step.enable)
                enabled -= set(step.disable)
        return frozenset(enabled)

    def always_enabled(self) -> frozenset[str]:
        """Regions enabled from the start and never disabled by the roll-out."""
        disabled = {code for step in self.rollout for code in step.disable}
        return frozenset(r.code for r in self.regions if r.enabled and r.code not in disabled)


# --- loading ------------------------------------------------------------------------------


def load_default_scenario() -> Scenario:
    """The scenario shipped as ``gongji/scenarios/default.toml``."""
    return load_scenario(DEFAULT_SCENARIO_PATH)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario file; ``ScenarioError`` lists every problem in it."""
    name = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise ScenarioError([f"{name}: cannot read: {e.strerror or e}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ScenarioError([f"{name}: line {line}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError([_syntax_problem(name, str(e))]) from None
    problems = _Problems(name)
    scenario = _build(data, problems, default_name=Path(path).stem)
    if problems.items:
        raise ScenarioError(problems.items)
    return scenario


def _syntax_problem(file: str, message: str) -> str:
    at = re.search(r"\s*\(at line (\d+), column (\d+)\)", message)
    if at is None:
        return f"{file}: TOML syntax error: {message}"
    text = message[: at.start()] + message[at.end() :]
    return f"{file}: line {at[1]}, column {at[2]}: TOML syntax error: {text}"


_POLICY_KEYS = (
    "scope",
    "payment_order",
    "wallet_enabled",
    "wallet_max_per_transfer_fen",
    "wallet_max_transfers_per_day",
    "resident_premium_fen",
)


def _build(data: dict[str, Any], problems: _Problems, default_name: str) -> Scenario:
    top = _Entry(problems, "top level", data)
    name = top.string("name", default_name)
    description = top.string("description", "", allow_empty=True)
    seed = top.integer("seed", 1)

    defaults = Policy()
    defaults_table = top.table("defaults")
    if defaults_table is not None:
        entry = _Entry(problems, "defaults", defaults_table)
        defaults = _policy(entry, Policy())
        entry.finish()

    regions = _regions(top, problems, defaults)
    codes = {r.code for r in regions}

    population = PopulationSpec()
    population_table = top.table("population")
    if population_table is not None:
        population = _population(_Entry(problems, "population", population_table), codes)

    bills = BillSpec()
    bills_table = top.table("bills")
    if bills_table is not None:
        bills = _bills(_Entry(problems, "bills", bills_table))

    rollout = _rollout(top, problems, codes, bills.count)
    top.finish()
    return Scenario(name, description, seed, tuple(regions), population, bills, rollout)


def _regions(top: _Entry, problems: _Problems, defaults: Policy) -> list[RegionSpec]:
    tables = top.tables("regions", required=True)
    if tables is not None and not tables:
        problems.add("top level", "regions", "no regions: a scenario needs at least one")
    regions: list[RegionSpec] = []
    first_seen: dict[str, str] = {}
    for i, table in enumerate(tables or []):
        code = table.get("code")
        label = f"regions[{i}] ({code})" if isinstance(code, str) else f"regions[{i}]"
        entry = _Entry(problems, label, table)
        code = entry.region_code("code")
        if code in first_seen:
            entry.problem("code", f"{code} is listed twice (first at {first_seen[code]})")
        elif code:
            first_seen[code] = label
        spec = RegionSpec(
            code=code,
            name=entry.string("name"),
            province=entry.string("province"),
            enabled=entry.boolean("enabled"),
            policy=_policy(entry, defaults),
        )
        entry.finish()
        regions.append(spec)
    return regions


def _policy(entry: _Entry, base: Policy) -> Policy:
    return Policy(
        scope=entry.choice("scope", Scope, base.scope),
        payment_order=entry.choice("payment_order", PaymentOrder, base.payment_order),
        wallet_enabled=entry.boolean("wallet_enabled", base.wallet_enabled),
        wallet_max_per_transfer_fen=entry.integer(
            "wallet_max_per_transfer_fen", base.wallet_max_per_transfer_fen
        ),
        wallet_max_transfers_per_day=entry.integer(
            "wallet_max_transfers_per_day", base.wallet_max_transfers_per_day
        ),
        resident_premium_fen=entry.integer("resident_premium_fen", base.resident_premium_fen),
    )


def _population(entry: _Entry, codes: set[str]) -> PopulationSpec:
    d = PopulationSpec()
    mix = entry.mix("insurance_mix", ["employee", "resident", "none"])
    insurance_mix = (
        d.insurance_mix
        if mix is None
        else InsuranceMix(mix.get("employee", 0.0), mix.get("resident", 0.0), mix.get("none", 0.0))
    )
    relationships = entry.mix("relationship_mix", [r.value for r in Relationship])
    relationship_mix = (
        d.relationship_mix
        if relationships is None
        else tuple((r, relationships.get(r.value, 0.0)) for r in Relationship)
    )
    counts = entry.mix(
        "bindings_per_beneficiary",
        [str(n) for n in range(1, MAX_BINDINGS_PER_BENEFICIARY + 1)],
        key_hint=f"a number of co-payers from 1 to {MAX_BINDINGS_PER_BENEFICIARY}",
    )
    bindings = (
        d.bindings_per_beneficiary
        if counts is None
        else tuple(sorted((int(k), v) for k, v in counts.items() if v > 0))
    )
    unregistered = entry.region_code("unregistered_region", d.unregistered_region)
    if unregistered in codes:
        entry.problem(
            "unregistered_region",
            f"{unregistered} is a region of this scenario; name a code outside it",
        )
    spec = PopulationSpec(
        persons_per_region=entry.integer(
            "persons_per_region", d.persons_per_region, maximum=MAX_PERSONS_PER_REGION
        ),
        insurance_mix=insurance_mix,
        zero_balance_share=entry.share("zero_balance_share", d.zero_balance_share),
        balance_fen=entry.fen_range("balance_fen", d.balance_fen),
        beneficiary_share=entry.share("beneficiary_share", d.beneficiary_share),
        bindings_per_beneficiary=bindings or d.bindings_per_beneficiary,
        cross_region_share=entry.share("cross_region_share", d.cross_region_share),
        relationship_mix=relationship_mix,
        unregistered_copayer_share=entry.share(
            "unregistered_copayer_share", d.unregistered_copayer_share
        ),
        unregistered_region=unregistered,
    )
    entry.finish()
    return spec


def _bills(entry: _Entry) -> BillSpec:
    d = BillSpec()
    spec = BillSpec(
        count=entry.integer("count", d.count),
        amount_fen=entry.fen_range("amount_fen", d.amount_fen, minimum=1),
        bound_share=entry.share("bound_share", d.bound_share),
        wallet_transfers=entry.integer("wallet_transfers", d.wallet_transfers),
        wallet_amount_fen=entry.fen_range("wallet_amount_fen", d.wallet_amount_fen, minimum=1),
        premium_payments=entry.integer("premium_payments", d.premium_payments),
        premium_year=entry.integer("premium_year", d.premium_year, minimum=1900, maximum=9999),
        binding_requests=entry.integer("binding_requests", d.binding_requests),
        wrong_secret_share=entry.share("wrong_secret_share", d.wrong_secret_share),
        over_limit_share=entry.share("over_limit_share", d.over_limit_share),
        duplicate_premium_share=entry.share("duplicate_premium_share", d.duplicate_premium_share),
        policy_disagreement_share=entry.share(
            "policy_disagreement_share", d.policy_disagreement_share
        ),
    )
    entry.finish()
    return spec


def _rollout(
    top: _Entry, problems: _Problems, codes: set[str], bill_count: int
) -> tuple[RolloutStep, ...]:
    steps: list[RolloutStep] = []
    previous = 0
    for i, table in enumerate(top.tables("rollout") or []):
        entry = _Entry(problems, f"rollout[{i}]", table)
        after = entry.integer("after_bills")
        if after > bill_count:
            entry.problem(
                "after_bills", f"{after} is after the last bill (bills.count is {bill_count})"
            )
        if after < previous:
            entry.problem("after_bills", f"{after} comes before the previous step's {previous}")
        previous = max(previous, after)
        enable = entry.region_codes("enable", codes)
        disable = entry.region_codes("disable", codes)
        for code in sorted(set(enable) & set(disable)):
            entry.problem("disable", f"{code} is also in 'enable' of the same step")
        entry.finish()
        steps.append(RolloutStep(after, enable, disable))
    return tuple(steps)


# --- field readers that collect problems ------------------------------------------------

_E = TypeVar("_E", bound=StrEnum)
_REQUIRED: Any = object()


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[str] = []

    def add(self, entry: str, field_name: str | None, message: str) -> None:
        where = f"{self.file}: {entry}"
        if field_name is not None:
            where += f": field '{field_name}'"
        self.items.append(f"{where}: {message}")


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {value}"


class _Entry:
    """One table of the file; reads typed fields, records problems, rejects unknown keys.

    A field with a problem reads as its default (or a harmless placeholder), so that the
    rest of the file is still checked and every problem is reported at once.
    """

    def __init__(
        self, problems: _Problems, name: str, table: dict[str, Any], prefix: str = ""
    ) -> None:
        self.problems = problems
        self.name = name
        self.data = table
        self.prefix = prefix
        """Names a field of a sub-table by its path, e.g. ``balance_fen.min``."""
        self.known: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.add(self.name, f"{self.prefix}{key}", message)

    def finish(self) -> None:
        for key in self.data:
            if key not in self.known:
                close = difflib.get_close_matches(key, self.known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.problem(key, f"unknown field{hint}; known: {', '.join(self.known)}")

    def _get(self, key: str, default: Any, placeholder: Any) -> tuple[Any, bool]:
        """(value, present); a missing required field is a problem and reads as placeholder."""
        self.known.append(key)
        if key in self.data:
            return self.data[key], True
        if default is _REQUIRED:
            self.problem(key, "missing (required)")
            return placeholder, False
        return default, False

    def _typed(
        self, key: str, default: Any, placeholder: Any, ok: Callable[[Any], bool], kind: str
    ) -> Any:
        value, present = self._get(key, default, placeholder)
        if present and not ok(value):
            self.problem(key, f"expected {kind}, got {_describe(value)}")
            return placeholder if default is _REQUIRED else default
        return value

    def string(self, key: str, default: Any = _REQUIRED, *, allow_empty: bool = False) -> str:
        value: str = self._typed(key, default, "", lambda v: isinstance(v, str), "a string")
        if not allow_empty and key in self.data and value == "" == self.data[key]:
            self.problem(key, "must not be empty")
        return value

    def boolean(self, key: str, default: Any = _REQUIRED) -> bool:
        value: bool = self._typed(
            key, default, False, lambda v: isinstance(v, bool), "a boolean (true or false)"
        )
        return value

    def integer(
        self, key: str, default: Any = _REQUIRED, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value: int = self._typed(key, default, minimum, lambda v: _is_int(v), "an integer")
        if key in self.data and _is_int(self.data[key]):
            if value < minimum:
                self.problem(key, f"{value} is less than {minimum}")
                return minimum
            if maximum is not None and value > maximum:
                self.problem(key, f"{value} is greater than {maximum}")
                return maximum
        return value

    def share(self, key: str, default: Any = _REQUIRED) -> float:
        value = self._typed(key, default, 0.0, _is_number, "a number from 0 to 1")
        if key in self.data and _is_number(self.data[key]) and not 0 <= value <= 1:
            self.problem(key, f"{value} is not a share from 0 to 1")
            return 0.0 if default is _REQUIRED else float(default)
        return float(value)

    def choice(self, key: str, enum: type[_E], default: _E) -> _E:
        values = [m.value for m in enum]
        raw = self.data.get(key)
        quote = f' (in quotes: "{raw}")' if not isinstance(raw, str) and str(raw) in values else ""
        value = self._typed(
            key,
            default,
            default,
            lambda v: isinstance(v, str),
            f"a string, one of {', '.join(values)}{quote}",
        )
        if isinstance(value, enum):
            return value
        if value not in values:
            self.problem(key, f"{value!r} is not one of {', '.join(values)}")
            return default
        return enum(value)

    def region_code(self, key: str, default: Any = _REQUIRED) -> str:
        value: str = self._typed(
            key, default, "", lambda v: isinstance(v, str), "a 6-digit region code as a string"
        )
        if isinstance(self.data.get(key), str) and not is_region_code(value):
            self.problem(key, f"{value!r} is not a 6-digit region code")
            return ""
        return value

    def region_codes(self, key: str, scenario_codes: set[str]) -> tuple[str, ...]:
        value = self._typed(
            key,
            [],
            [],
            lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
            "an array of region codes (strings)",
        )
        codes: list[str] = []
        for code in value:
            if not is_region_code(code):
                self.problem(key, f"{code!r} is not a 6-digit region code")
            elif code not in scenario_codes:
                self.problem(key, f"{code} is not a region of this scenario")
            elif code in codes:
                self.problem(key, f"{code} is listed twice")
            else:
                codes.append(code)
        return tuple(codes)

    def table(self, key: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self._typed(
            key, None, None, lambda v: isinstance(v, dict), "a table"
        )
        return value

    def tables(self, key: str, *, required: bool = False) -> list[dict[str, Any]] | None:
        value: list[dict[str, Any]] | None = self._typed(
            key,
            _REQUIRED if required else None,
            None,
            lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
            f"an array of tables ([[{key}]])",
        )
        return value

    def fen_range(self, key: str, default: FenRange, *, minimum: int = 0) -> FenRange:
        """A ``{ min = .., max = .. }`` table; both required, ``min <= max``."""
        table = self.table(key)
        if table is None:
            return default
        before = len(self.problems.items)
        sub = _Entry(self.problems, self.name, table, prefix=f"{self.prefix}{key}.")
        low, high = sub.integer("min", minimum=minimum), sub.integer("max", minimum=minimum)
        sub.finish()
        if len(self.problems.items) > before:
            return default
        if low > high:
            self.problem(key, f"min {low} is greater than max {high}")
            return default
        return FenRange(low, high)

    def mix(
        self, key: str, keys: list[str], *, key_hint: str | None = None
    ) -> dict[str, float] | None:
        """A table of shares over ``keys`` (missing keys: 0) that sums to 1; None when
        absent or wrong (wrong: a problem is recorded)."""
        table = self.table(key)
        if table is None:
            return None
        shares: dict[str, float] = {}
        bad = False
        for k, v in table.items():
            path = f"{self.prefix}{key}.{k}"
            if k not in keys:
                # Near-miss hints help with names, not with numbers ('0' is no typo of '10').
                close = [] if key_hint else difflib.get_close_matches(k, keys, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                known = key_hint or f"one of {', '.join(keys)}"
                self.problems.add(self.name, path, f"unknown key{hint}; expected {known}")
                bad = True
            elif not _is_number(v):
                self.problems.add(
                    self.name, path, f"expected a number from 0 to 1, got {_describe(v)}"
                )
                bad = True
            elif not 0 <= v <= 1:
                self.problems.add(self.name, path, f"{v} is not a share from 0 to 1")
                bad = True
            else:
                shares[k] = float(v)
        if bad:
            return None
        total = math.fsum(shares.values())
        if abs(total - 1.0) > MIX_TOLERANCE:
            self.problem(key, f"shares sum to {total:.12g}, not 1")
            return None
        return shares


def _is_int(value: object) -> bool:
    # bool is an int subclass in Python, not in TOML: true is no count.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    # TOML has inf and nan; neither is a share.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


# --- what a scenario generates ----------------------------------------------------------


def population_of(scenario: Scenario) -> Population:
    """The scenario's population, drawn deterministically from its seed."""
    spec = scenario.population
    return draw_population(scenario.regions, spec.persons_per_region, scenario.seed, spec.draws())


def bills_of(
    scenario: Scenario,
    reply_to: str,
    population: Population | None = None,
    prefix: str = "t",
) -> list[SubmitBill]:
    """The scenario's bills (send each to ``region_of(bill.beneficiary)``)."""
    spec = scenario.bills
    return draw_bills(
        population if population is not None else population_of(scenario),
        spec.count,
        scenario.seed,
        reply_to,
        prefix,
        bound_share=spec.bound_share,
        amount_min_fen=spec.amount_fen.min,
        amount_max_fen=spec.amount_fen.max,
    )


def rollout_operations(step: RolloutStep) -> list[Outgoing]:
    """The registry changes of a roll-out step, for the clearinghouse."""
    return [Outgoing(CLEARINGHOUSE, SetRegionEnabled(code, True)) for code in step.enable] + [
        Outgoing(CLEARINGHOUSE, SetRegionEnabled(code, False)) for code in step.disable
    ]


def wrong_secret(secret: str) -> str:
    """A secret that fails the identity check of the person whose secret is ``secret``."""
    return f"wrong-{secret}"


def _portion(share: float, n: int) -> int:
    """How many of ``n`` requests a share makes deliberately wrong: at least one when the
    share is positive, so a small demo still reaches the reason."""
    if share <= 0 or n <= 0:
        return 0
    return min(n, max(1, round(share * n)))


def _bound_pairs(population: Population) -> list[tuple[Person, Person]]:
    """(co-payer, beneficiary) of every binding whose co-payer is enrolled in the scenario."""
    persons = {p.psn_no: p for p in population.persons}
    pairs = []
    for b in population.bindings:
        copayer, beneficiary = persons.get(b.copayer), persons.get(b.beneficiary)
        if copayer is not None and beneficiary is not None:
            pairs.append((copayer, beneficiary))
    return pairs


def wallet_transfers_of(
    scenario: Scenario, population: Population, reply_to: str, prefix: str = "w"
) -> list[RequestWalletTransfer]:
    """Wallet transfers along bound pairs (send each to ``region_of(op.copayer)``).

    No co-payer makes more requests than the day's limit of any region involved allows,
    and ordinary amounts are within both regions' per-transfer limits, so
    ``LIMIT_EXCEEDED`` comes only from the deliberately over-limit transfers: between two
    always-enabled wallet regions, from a co-payer who could cover the amount, above both
    limits. Others carry a wrong secret (``IDENTITY_CHECK_FAILED``). Ordinary transfers use
    any bound pair, so ``WALLET_NOT_ENABLED`` and ``REGION_NOT_ENABLED`` occur as the
    scenario's policies make them. Fewer than asked when the population runs out of pairs.
    """
    spec = scenario.bills
    n = spec.wallet_transfers
    rng = random.Random(f"{scenario.seed}/wallet")
    policies = {r.code: r.policy for r in scenario.regions}
    steady = scenario.always_enabled()
    pairs = _bound_pairs(population)
    used: Counter[str] = Counter()

    def room(copayer: Person, beneficiary: Person) -> bool:
        cap = min(
            policies[copayer.region].wallet_max_transfers_per_day,
            policies[beneficiary.region].wallet_max_transfers_per_day,
        )
        return used[copayer.psn_no] < cap

    def limit(copayer: Person, beneficiary: Person, pick: Callable[..., int]) -> int:
        return pick(
            policies[copayer.region].wallet_max_per_transfer_fen,
            policies[beneficiary.region].wallet_max_per_transfer_fen,
        )

    # (copayer, beneficiary, amount, secret correct)
    chosen: list[tuple[Person, Person, int, bool]] = []
    n_over = _portion(spec.over_limit_share, n)
    clean = [
        (c, b)
        for c, b in pairs
        if c.region != b.region
        and {c.region, b.region} <= steady
        and policies[c.region].wallet_enabled
        and policies[b.region].wallet_enabled
    ]
    rng.shuffle(clean)
    for c, b in clean:
        if len(chosen) == n_over:
            break
        amount = limit(c, b, max) + rng.randint(1, 10_000)
        if c.opening_balance_fen >= amount and room(c, b):
            used[c.psn_no] += 1
            chosen.append((c, b, amount, True))

    ordinary = [(c, b) for c, b in pairs if limit(c, b, min) >= 1]
    rng.shuffle(ordinary)
    target = n - len(chosen)
    start = len(chosen)
    while len(chosen) - start < target:
        progress = False
        for c, b in ordinary:
            if len(chosen) - start == target:
                break
            if room(c, b):
                amount = min(
                    rng.randint(spec.wallet_amount_fen.min, spec.wallet_amount_fen.max),
                    limit(c, b, min),
                )
                used[c.psn_no] += 1
                chosen.append((c, b, amount, True))
                progress = True
        if not progress:
            break
    n_wrong = min(_portion(spec.wrong_secret_share, n), len(chosen) - start)
    for i in rng.sample(range(start, len(chosen)), n_wrong):
        c, b, amount, _ = chosen[i]
        chosen[i] = (c, b, amount, False)
    rng.shuffle(chosen)
    return [
        RequestWalletTransfer(
            f"{prefix}-{scenario.seed}-{i:07d}",
            c.psn_no,
            c.secret if ok else wrong_secret(c.secret),
            b.psn_no,
            b.region,
            amount,
            reply_to,
        )
        for i, (c, b, amount, ok) in enumerate(chosen)
    ]


def premium_payments_of(
    scenario: Scenario, population: Population, reply_to: str, prefix: str = "p"
) -> list[RequestPremiumPayment]:
    """Premium payments for resident-insured beneficiaries by their co-payers (send each to
    ``region_of(op.copayer)``).

    Each (beneficiary, year) is paid once (later years when there are more payments than
    beneficiaries), except the deliberate duplicates, which come last, each repeating an
    earlier payment made by the richest co-payers between always-enabled regions (by
    another co-payer of the same beneficiary when there is one): ``PREMIUM_ALREADY_PAID``.
    Some others carry a wrong secret (``IDENTITY_CHECK_FAILED``).
    """
    spec = scenario.bills
    n = spec.premium_payments
    rng = random.Random(f"{scenario.seed}/premium")
    policies = {r.code: r.policy for r in scenario.regions}
    steady = scenario.always_enabled()
    copayers_of: dict[str, list[Person]] = {}
    beneficiaries: dict[str, Person] = {}
    for c, b in _bound_pairs(population):
        if b.insurance is Insurance.RESIDENT:
            copayers_of.setdefault(b.psn_no, []).append(c)
            beneficiaries[b.psn_no] = b
    if not beneficiaries or n <= 0:
        return []

    def solvent(c: Person, b: Person) -> bool:
        return {c.region, b.region} <= steady and c.opening_balance_fen >= (
            policies[b.region].resident_premium_fen
        )

    n_dup = min(_portion(spec.duplicate_premium_share, n), n // 2)
    sources = sorted(
        (
            (max(cs, key=lambda c: (c.opening_balance_fen, c.psn_no)), beneficiaries[psn])
            for psn, cs in copayers_of.items()
        ),
        key=lambda cb: (-cb[0].opening_balance_fen, cb[1].psn_no),
    )
    sources = [(c, b) for c, b in sources if solvent(c, b)][:n_dup]

    year = spec.premium_year
    # (copayer, beneficiary, year, secret correct)
    originals = [(c, b, year, True) for c, b in sources]
    taken = {(b.psn_no, year) for _, b in sources}
    order = sorted(beneficiaries)
    rng.shuffle(order)
    k = 0
    while len(originals) < n - len(sources):
        psn, y = order[k % len(order)], year + k // len(order)
        k += 1
        if (psn, y) not in taken:
            taken.add((psn, y))
            originals.append((rng.choice(copayers_of[psn]), beneficiaries[psn], y, True))
    others = range(len(sources), len(originals))
    for i in rng.sample(others, min(_portion(spec.wrong_secret_share, n), len(others))):
        c, b, y, _ = originals[i]
        originals[i] = (c, b, y, False)
    duplicates = []
    for c, b in sources:
        second = [o for o in copayers_of[b.psn_no] if o != c and solvent(o, b)]
        duplicates.append((second[0] if second else c, b, year, True))
    rng.shuffle(originals)
    return [
        RequestPremiumPayment(
            f"{prefix}-{scenario.seed}-{i:07d}",
            c.psn_no,
            c.secret if ok else wrong_secret(c.secret),
            b.psn_no,
            b.region,
            y,
            reply_to,
        )
        for i, (c, b, y, ok) in enumerate(originals + duplicates)
    ]


def binding_requests_of(
    scenario: Scenario, population: Population, reply_to: str, prefix: str = "r"
) -> list[RequestBinding]:
    """New cross-region bindings between always-enabled regions (send each to
    ``region_of(op.copayer)``): an employee-insured co-payer, an insured beneficiary, a
    relationship both policies allow. Deliberately wrong ones: a relationship outside the
    2021 scope between a 2021-scope and a 2024-scope region (``POLICY_DISAGREEMENT``,
    none when the scenario has no such pair of regions), and a wrong secret
    (``IDENTITY_CHECK_FAILED``)."""
    spec = scenario.bills
    n = spec.binding_requests
    rng = random.Random(f"{scenario.seed}/binding")
    policies = {r.code: r.policy for r in scenario.regions}
    steady = scenario.always_enabled()
    bound = {(b.copayer, b.beneficiary) for b in population.bindings}
    employees = [
        p for p in population.persons if p.insurance is Insurance.EMPLOYEE and p.region in steady
    ]
    insured = [
        p for p in population.persons if p.insurance is not Insurance.NONE and p.region in steady
    ]
    # (copayer, beneficiary, relationship, secret correct)
    chosen: list[tuple[Person, Person, Relationship, bool]] = []

    def pick(
        accept: Callable[[Person, Person], list[Relationship]], want: int, attempts: int
    ) -> None:
        goal = len(chosen) + want
        for _ in range(attempts):
            if len(chosen) == goal or not employees or not insured:
                return
            c, b = rng.choice(employees), rng.choice(insured)
            if c.region == b.region or (c.psn_no, b.psn_no) in bound:
                continue
            allowed = accept(c, b)
            relationship = _weighted(rng, allowed, scenario.population.relationship_mix)
            if relationship is not None:
                bound.add((c.psn_no, b.psn_no))
                chosen.append((c, b, relationship, True))

    wider = sorted(SCOPE_RELATIONSHIPS[Scope.SCOPE_2024] - SCOPE_RELATIONSHIPS[Scope.SCOPE_2021])

    def disagreeing(c: Person, b: Person) -> list[Relationship]:
        scopes = {policies[c.region].scope, policies[b.region].scope}
        return wider if scopes == {Scope.SCOPE_2021, Scope.SCOPE_2024} else []

    def agreeing(c: Person, b: Person) -> list[Relationship]:
        both = (policies[c.region], policies[b.region])
        return [r for r in Relationship if all(p.allows(r) for p in both)]

    n_disagree = _portion(spec.policy_disagreement_share, n)
    pick(disagreeing, n_disagree, attempts=200 * n_disagree)
    start = len(chosen)
    pick(agreeing, n - start, attempts=200 * n)
    n_wrong = min(_portion(spec.wrong_secret_share, n), len(chosen) - start)
    for i in rng.sample(range(start, len(chosen)), n_wrong):
        c, b, relationship, _ = chosen[i]
        chosen[i] = (c, b, relationship, False)
    rng.shuffle(chosen)
    return [
        RequestBinding(
            f"{prefix}-{scenario.seed}-{i:07d}",
            c.psn_no,
            c.secret if ok else wrong_secret(c.secret),
            b.psn_no,
            b.region,
            relationship,
            reply_to,
        )
        for i, (c, b, relationship, ok) in enumerate(chosen)
    ]


def _weighted(
    rng: random.Random,
    allowed: list[Relationship],
    weights: tuple[tuple[Relationship, float], ...],
) -> Relationship | None:
    """A relationship among ``allowed`` by the mix; uniform when the mix gives them none."""
    usable = [(r, w) for r, w in weights if r in allowed and w > 0]
    if not usable:
        return rng.choice(allowed) if allowed else None
    roll = rng.random() * math.fsum(w for _, w in usable)
    for relationship, weight in usable:
        if roll < weight:
            return relationship
        roll -= weight
    return usable[-1][0]


__all__ = [
    "DEFAULT_SCENARIO_PATH",
    "ROLLOUT_SCENARIO_PATH",
    "BillSpec",
    "FenRange",
    "InsuranceMix",
    "PopulationSpec",
    "RolloutStep",
    "Scenario",
    "ScenarioError",
    "bills_of",
    "binding_requests_of",
    "load_default_scenario",
    "load_scenario",
    "population_of",
    "premium_payments_of",
    "rollout_operations",
    "secret_of",
    "wallet_transfers_of",
    "wrong_secret",
]
