"""Reading a scenario file: TOML in, a validated ``Scenario`` out, or every problem.

Loading is all or nothing: every problem in the file is collected and reported together
in one ``ScenarioError`` naming the file, the entry and the field, and nothing is
returned until the whole file is valid, so no run starts half-configured.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from contracts.identifiers import IDENTIFIER_CHARACTERS, MAX_IDENTIFIER_LENGTH, is_identifier
from contracts.operations import MAX_AMOUNT_FEN
from contracts.policy import Policy
from contracts.vocabulary import Insurance, PaymentOrder, Relationship, Scope
from gongji.population import Migration, RegionSpec
from gongji.scenario.fields import Entry, Problems
from gongji.scenario.records import (
    BILLS_PAID,
    BillSpec,
    CalibrationTargets,
    ClearingSpec,
    InsuranceMix,
    NamedBinding,
    NamedPerson,
    PopulationSpec,
    RolloutStep,
    Scenario,
    WindowCadence,
)

IDENTIFIER_RULE = f"1 to {MAX_IDENTIFIER_LENGTH} of {IDENTIFIER_CHARACTERS}"

SCENARIO_DIR = Path(__file__).parent.parent / "scenarios"
"""Where the scenarios shipped with the package live (package data)."""
DEFAULT_SCENARIO_PATH = SCENARIO_DIR / "default.toml"
ROLLOUT_SCENARIO_PATH = SCENARIO_DIR / "rollout.toml"

MAX_PERSONS_PER_REGION = 999_999
"""Person numbers carry a 6-digit serial per region."""
MAX_BINDINGS_PER_BENEFICIARY = 10


class ScenarioError(ValueError):
    """A scenario file that cannot be used; ``problems`` lists every problem found."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


def shipped_scenarios() -> list[str]:
    """The names of the scenarios shipped with the package (``default``, ``national``...)."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def scenario_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A shipped scenario by name (``national``), else the path as given."""
    text = os.fspath(name_or_path)
    if text in shipped_scenarios():
        return SCENARIO_DIR / f"{text}.toml"
    return Path(text)


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
    problems = Problems(name)
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


def _build(data: dict[str, Any], problems: Problems, default_name: str) -> Scenario:
    top = Entry(problems, "top level", data)
    name = top.string("name", default_name)
    description = top.string("description", "", allow_empty=True)
    seed = top.integer("seed", 1)

    defaults = Policy()
    defaults_table = top.table("defaults")
    if defaults_table is not None:
        entry = Entry(problems, "defaults", defaults_table)
        defaults = _policy(entry, Policy())
        entry.finish()

    regions = _regions(top, problems, defaults)
    codes = {r.code for r in regions}

    population = PopulationSpec()
    population_table = top.table("population")
    if population_table is not None:
        population = _population(Entry(problems, "population", population_table), codes)

    bills = BillSpec()
    bills_table = top.table("bills")
    if bills_table is not None:
        bills = _bills(Entry(problems, "bills", bills_table))

    clearing = ClearingSpec()
    clearing_table = top.table("clearing")
    if clearing_table is not None:
        clearing = _clearing(Entry(problems, "clearing", clearing_table))

    rollout = _rollout(top, problems, codes, bills.count)
    persons = _persons(top, problems, codes)
    bindings = _bindings(top, problems, {p.psn_no: p for p in persons})
    calibration = CalibrationTargets()
    calibration_table = top.table("calibration")
    if calibration_table is not None:
        calibration = _calibration(Entry(problems, "calibration", calibration_table))
    top.finish()
    return Scenario(
        name,
        description,
        seed,
        tuple(regions),
        population,
        bills,
        rollout,
        persons,
        bindings,
        clearing,
        calibration,
    )


FLOW_NAMES = ("copay", "wallet", "premium", "binding")
"""The flows a calibration's ``flow_shares`` may name (those of ``gongji load --mix``)."""


def _calibration(entry: Entry) -> CalibrationTargets:
    """``[calibration]``: the figures a run should show."""
    wallet: int | None = entry.integer("wallet_amount_fen", None, minimum=1)
    premium: float | None = None
    if "premium_money_share" in entry.data:
        premium = entry.share("premium_money_share")
    else:
        entry.known.append("premium_money_share")
    flows = entry.mix("flow_shares", list(FLOW_NAMES))
    paid = entry.mix("bills_paid", list(BILLS_PAID))
    entry.finish()
    return CalibrationTargets(
        wallet_amount_fen=wallet,
        premium_money_share=premium,
        flow_shares=tuple((f, flows.get(f, 0.0)) for f in FLOW_NAMES) if flows else (),
        bills_paid=tuple((k, paid.get(k, 0.0)) for k in BILLS_PAID) if paid else (),
    )


def _migration(entry: Entry, codes: set[str]) -> Migration | None:
    """``[population.migration]``: share, work and home provinces (2-digit codes)."""
    provinces = {code[:2] for code in codes}
    share = entry.share("share")
    sides: dict[str, frozenset[str]] = {}
    for key in ("work", "home"):
        value = entry.data.get(key)
        entry.known.append(key)
        if key not in entry.data:
            entry.problem(key, "missing (required)")
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            entry.problem(key, "expected an array of 2-digit province codes (strings)")
            continue
        for v in value:
            if not (len(v) == 2 and v.isdigit()):
                entry.problem(key, f'{v!r} is not a 2-digit province code (e.g. "44")')
            elif v not in provinces:
                entry.problem(key, f"{v}: no region of this scenario is in that province")
        sides[key] = frozenset(value)
    for province in sorted(sides.get("work", frozenset()) & sides.get("home", frozenset())):
        entry.problem("home", f"{province} is also a 'work' province")
    entry.finish()
    if len(sides) < 2:
        return None
    return Migration(share, sides["work"], sides["home"])


def _persons(top: Entry, problems: Problems, codes: set[str]) -> tuple[NamedPerson, ...]:
    """``[[persons]]``: number, region (of this scenario), insurance, balance, secret."""
    persons: list[NamedPerson] = []
    first_seen: dict[str, str] = {}
    for i, table in enumerate(top.tables("persons") or []):
        number = table.get("number")
        label = f"persons[{i}] ({number})" if isinstance(number, str) else f"persons[{i}]"
        entry = Entry(problems, label, table)
        psn_no = entry.string("number")
        if psn_no and not is_identifier(psn_no):
            entry.problem("number", f"a person number is {IDENTIFIER_RULE}")
        if psn_no in first_seen:
            entry.problem("number", f"{psn_no} is listed twice (first at {first_seen[psn_no]})")
        elif psn_no:
            first_seen[psn_no] = label
        code = entry.region_code("region")
        if code and code not in codes:
            entry.problem("region", f"{code} is not a region of this scenario")
        person = NamedPerson(
            psn_no,
            code,
            entry.choice("insurance", Insurance, Insurance.EMPLOYEE),
            entry.integer("balance_fen", 0),
            entry.string("secret", "", allow_empty=True),
        )
        entry.finish()
        persons.append(person)
    return tuple(persons)


def _bindings(
    top: Entry, problems: Problems, persons: dict[str, NamedPerson]
) -> tuple[NamedBinding, ...]:
    """``[[bindings]]``: co-payer and beneficiary (named persons), relationship."""
    bindings: list[NamedBinding] = []
    for i, table in enumerate(top.tables("bindings") or []):
        entry = Entry(problems, f"bindings[{i}]", table)
        copayer = entry.string("copayer")
        beneficiary = entry.string("beneficiary")
        for key, number in (("copayer", copayer), ("beneficiary", beneficiary)):
            if number and number not in persons:
                entry.problem(key, f"{number} is not a person of [[persons]]")
        if copayer and copayer == beneficiary:
            entry.problem("beneficiary", "a person does not co-pay for himself or herself")
        relationship = entry.choice("relationship", Relationship, Relationship.PARENT)
        entry.finish()
        bindings.append(NamedBinding(copayer, beneficiary, relationship))
    return tuple(bindings)


def _regions(top: Entry, problems: Problems, defaults: Policy) -> list[RegionSpec]:
    tables = top.tables("regions", required=True)
    if tables is not None and not tables:
        problems.add("top level", "regions", "no regions: a scenario needs at least one")
    regions: list[RegionSpec] = []
    first_seen: dict[str, str] = {}
    for i, table in enumerate(tables or []):
        code = table.get("code")
        label = f"regions[{i}] ({code})" if isinstance(code, str) else f"regions[{i}]"
        entry = Entry(problems, label, table)
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


def _policy(entry: Entry, base: Policy) -> Policy:
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
        direct_settlement=entry.boolean("direct_settlement", base.direct_settlement),
        catalogue_share_permille=entry.integer(
            "catalogue_share_permille", base.catalogue_share_permille, maximum=1000
        ),
    )


def _population(entry: Entry, codes: set[str]) -> PopulationSpec:
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
    migration = None
    migration_table = entry.table("migration")
    if migration_table is not None:
        sub = Entry(entry.problems, entry.name, migration_table, prefix="migration.")
        migration = _migration(sub, codes)
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
        short_balance_share=entry.share("short_balance_share", d.short_balance_share),
        short_balance_max_fen=entry.integer(
            "short_balance_max_fen", d.short_balance_max_fen, minimum=1
        ),
        migration=migration,
    )
    entry.finish()
    return spec


def _clearing(entry: Entry) -> ClearingSpec:
    """``[clearing]``: window (daily or monthly), advance_fen."""
    d = ClearingSpec()
    spec = ClearingSpec(
        window=entry.choice("window", WindowCadence, d.window),
        advance_fen=entry.integer("advance_fen", d.advance_fen, maximum=MAX_AMOUNT_FEN),
    )
    entry.finish()
    return spec


def _bills(entry: Entry) -> BillSpec:
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
    top: Entry, problems: Problems, codes: set[str], bill_count: int
) -> tuple[RolloutStep, ...]:
    steps: list[RolloutStep] = []
    previous = 0
    for i, table in enumerate(top.tables("rollout") or []):
        entry = Entry(problems, f"rollout[{i}]", table)
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
