"""Loading scenario files: the shipped ones, and every kind of mistake in one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from contracts.identifiers import is_region_code
from contracts.vocabulary import PaymentOrder, Relationship, Scope
from gongji.scenario import (
    DEFAULT_SCENARIO_PATH,
    ROLLOUT_SCENARIO_PATH,
    FenRange,
    InsuranceMix,
    RolloutStep,
    ScenarioError,
    load_default_scenario,
    load_scenario,
)
from tests.scenario.conftest import SMALL

pytestmark = pytest.mark.timeout(30)

# Provinces named as enabled by 2025-03-16 (146 pooling regions in 17 provinces).
ENABLED_PROVINCES = {
    "Tianjin", "Hebei", "Shanghai", "Jiangsu", "Anhui", "Shandong", "Henan", "Hubei",
    "Guangdong", "Guangxi", "Chongqing", "Sichuan", "Guizhou", "Tibet", "Gansu", "Xinjiang",
}  # fmt: skip


def pinyin(province: str) -> str:
    return province.split()[-1]


def test_default_scenario_loads_with_real_regions_enabled_as_published() -> None:
    s = load_default_scenario()
    assert s.name == "default"
    assert 28 <= len(s.regions) <= 35
    assert all(is_region_code(r.code) for r in s.regions)
    assert len({r.code for r in s.regions}) == len(s.regions)
    assert len({r.province for r in s.regions}) >= 25
    for r in s.regions:
        assert r.enabled == (pinyin(r.province) in ENABLED_PROVINCES), r
        assert any("\u4e00" <= ch <= "\u9fff" for ch in r.name), "Chinese name"
        assert any(ch.isascii() and ch.isalpha() for ch in r.name), "pinyin name"
    policies = [r.policy for r in s.regions if r.enabled]
    assert {p.scope for p in policies} == set(Scope)
    assert {p.payment_order for p in policies} == set(PaymentOrder)
    assert {p.wallet_enabled for p in policies} == {True, False}
    assert len({p.resident_premium_fen for p in policies}) > 1
    assert 100 <= s.population.persons_per_region <= 200
    assert s.population.unregistered_region not in s.codes
    assert s.rollout and s.rollout[0].enable and s.rollout[0].disable
    assert s.bills.wallet_transfers and s.bills.premium_payments and s.bills.binding_requests


def test_default_scenario_path_is_inside_the_package() -> None:
    import gongji

    assert DEFAULT_SCENARIO_PATH.is_file()
    assert DEFAULT_SCENARIO_PATH.parent.parent == Path(gongji.__file__).parent


def test_rollout_scenario_enables_regions_in_phases() -> None:
    s = load_scenario(ROLLOUT_SCENARIO_PATH)
    assert not s.enabled_after(0)
    phases = [s.enabled_after(step.after_bills) for step in s.rollout]
    assert len(phases) == 2
    first, later = phases
    assert first < later < set(s.codes)
    provinces = [{s.region(c).province for c in phase} for phase in phases]
    # 31 in 9 provinces, then 146 in 17, scaled: fewer regions and provinces first.
    assert len(first) < len(provinces[1]) and len(provinces[0]) < len(provinces[1])
    assert len(later) / len(first) == pytest.approx(146 / 31, rel=0.1)
    assert all(pinyin(p) in ENABLED_PROVINCES for p in provinces[1])
    assert all(step.after_bills <= s.bills.count for step in s.rollout)


def test_a_minimal_file_takes_the_defaults(write: Callable[[str], Path]) -> None:
    s = load_scenario(write(SMALL))
    assert s.name == "small" and s.seed == 3 and s.description == ""
    chengdu = s.region("510100")
    assert chengdu.policy.scope is Scope.SCOPE_2021
    assert chengdu.policy.payment_order is PaymentOrder.COPAYER_FIRST
    assert s.region("420100").policy.scope is Scope.SCOPE_2024
    assert s.population.insurance_mix == InsuranceMix(0.6, 0.3, 0.1)
    assert s.rollout == ()


def test_sections_are_read(write: Callable[[str], Path]) -> None:
    text = (
        SMALL
        + """
[defaults]
wallet_max_transfers_per_day = 5

[population]
persons_per_region = 7
insurance_mix = { employee = 1 }
balance_fen = { min = 0, max = 10 }
bindings_per_beneficiary = { 1 = 0.5, 3 = 0.5 }
relationship_mix = { spouse = 0.5, sibling = 0.5 }
unregistered_region = "650100"

[bills]
count = 50
amount_fen = { min = 1, max = 2 }

[[rollout]]
after_bills = 10
enable = ["110000"]

[[rollout]]
after_bills = 20
disable = ["110000", "420100"]
"""
    )
    s = load_scenario(write(text))
    assert all(r.policy.wallet_max_transfers_per_day == 5 for r in s.regions)
    p = s.population
    assert p.persons_per_region == 7
    assert p.insurance_mix == InsuranceMix(1.0, 0.0, 0.0)
    assert p.balance_fen == FenRange(0, 10)
    assert p.bindings_per_beneficiary == ((1, 0.5), (3, 0.5))
    assert dict(p.relationship_mix)[Relationship.SIBLING] == 0.5
    assert dict(p.relationship_mix)[Relationship.PARENT] == 0.0
    assert s.bills.count == 50 and s.bills.amount_fen == FenRange(1, 2)
    assert s.rollout == (RolloutStep(10, ("110000",)), RolloutStep(20, (), ("110000", "420100")))
    assert s.enabled_after(9) == {"420100", "510100"}
    assert s.enabled_after(10) == {"420100", "510100", "110000"}
    assert s.enabled_after(20) == {"510100"}
    assert s.always_enabled() == {"510100"}


def region(code: str, extra: str = "") -> str:
    return f"""
[[regions]]
code = "{code}"
name = "n"
province = "p"
enabled = true
{extra}
"""


def load_error(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    return caught.value


SYNTAX = SMALL + "\n[bills]\ncount = = 4\n"

# (what is wrong, the file's text, the parts the message must hold besides the file name)
MISTAKES = [
    (
        "syntax",
        SYNTAX,
        [f"line {SYNTAX.count(chr(10))}, column 9", "TOML syntax error"],
    ),
    (
        "unknown key in a region",
        SMALL + region("440100", "payment_ordr = 'own_first'"),
        ["regions[3] (440100)", "field 'payment_ordr'", "unknown field", "payment_order"],
    ),
    (
        "unknown top-level key",
        "sead = 4\n" + SMALL,
        ["top level", "field 'sead'", "unknown field", "did you mean 'seed'"],
    ),
    (
        "unknown key in a sub-table",
        SMALL + "[population]\ninsurance_mix = { employe = 0.7, resident = 0.3 }\n",
        ["population", "field 'insurance_mix.employe'", "unknown key", "employee"],
    ),
    (
        "bool is not an integer",
        SMALL + "[population]\npersons_per_region = true\n",
        ["population", "field 'persons_per_region'", "expected an integer", "boolean true"],
    ),
    (
        "string is not a boolean",
        SMALL + region("440100").replace("enabled = true", 'enabled = "yes"'),
        ["regions[3] (440100)", "field 'enabled'", "expected a boolean", "string 'yes'"],
    ),
    (
        "integer is not a scope string",
        SMALL + region("440100", "scope = 2021"),
        ["regions[3] (440100)", "field 'scope'", "expected a string", "integer 2021"],
    ),
    (
        "code not 6 digits",
        SMALL + region("44010"),
        ["regions[3] (44010)", "field 'code'", "'44010' is not a 6-digit region code"],
    ),
    (
        "code not a string",
        SMALL + region("x").replace('code = "x"', "code = 440100"),
        ["regions[3]", "field 'code'", "expected a 6-digit region code as a string"],
    ),
    (
        "duplicate code",
        SMALL + region("420100"),
        ["regions[3] (420100)", "field 'code'", "420100 is listed twice", "regions[0]"],
    ),
    (
        "bad enum",
        SMALL + region("420500", "payment_order = 'cash_first'"),
        [
            "regions[3] (420500)",
            "field 'payment_order'",
            "'cash_first' is not one of own_first, copayer_first",
        ],
    ),
    (
        "missing required field",
        SMALL + region("440100").replace('province = "p"\n', ""),
        ["regions[3] (440100)", "field 'province'", "missing"],
    ),
    (
        "mix not summing to 1",
        SMALL + "[population]\ninsurance_mix = { employee = 0.6, resident = 0.3 }\n",
        ["population", "field 'insurance_mix'", "sum to 0.9, not 1"],
    ),
    (
        "negative share",
        SMALL + "[population]\nrelationship_mix = { spouse = 1.5 }\n",
        ["population", "field 'relationship_mix.spouse'", "1.5 is not a share"],
    ),
    (
        "bindings count out of range",
        SMALL + "[population]\nbindings_per_beneficiary = { 0 = 1.0 }\n",
        ["population", "field 'bindings_per_beneficiary.0'", "from 1 to 10"],
    ),
    (
        "rollout naming an unknown region",
        SMALL + "[[rollout]]\nafter_bills = 5\nenable = ['330100']\n",
        ["rollout[0]", "field 'enable'", "330100 is not a region of this scenario"],
    ),
    (
        "rollout after the last bill",
        SMALL + "[bills]\ncount = 10\n[[rollout]]\nafter_bills = 11\n",
        ["rollout[0]", "field 'after_bills'", "bills.count is 10"],
    ),
    (
        "rollout out of order",
        SMALL + "[[rollout]]\nafter_bills = 9\n[[rollout]]\nafter_bills = 5\n",
        ["rollout[1]", "field 'after_bills'", "5 comes before the previous step's 9"],
    ),
    (
        "rollout enabling and disabling one region",
        SMALL + "[[rollout]]\nafter_bills = 5\nenable = ['110000']\ndisable = ['110000']\n",
        ["rollout[0]", "field 'disable'", "110000 is also in 'enable'"],
    ),
    (
        "min > max",
        SMALL + "[population]\nbalance_fen = { min = 500, max = 100 }\n",
        ["population", "field 'balance_fen'", "min 500 is greater than max 100"],
    ),
    (
        "range missing a bound",
        SMALL + "[bills]\namount_fen = { min = 5 }\n",
        ["bills", "field 'amount_fen.max'", "missing"],
    ),
    (
        "negative count",
        SMALL + "[bills]\nwallet_transfers = -1\n",
        ["bills", "field 'wallet_transfers'", "-1 is less than 0"],
    ),
    (
        "unregistered region inside the scenario",
        SMALL + "[population]\nunregistered_region = '420100'\n",
        ["population", "field 'unregistered_region'", "420100 is a region of this scenario"],
    ),
    (
        "no regions",
        'name = "empty"\n',
        ["top level", "field 'regions'", "missing"],
    ),
]


@pytest.mark.parametrize(
    ("text", "parts"), [(t, p) for _, t, p in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_a_mistake_is_reported_with_file_entry_and_field(
    write: Callable[[str], Path], text: str, parts: list[str]
) -> None:
    path = write(text)
    error = load_error(path)
    assert len(error.problems) == 1, error.problems
    message = str(error)
    assert message.startswith(f"{path}: ")
    for part in parts:
        assert part in message


def test_the_syntax_error_names_the_line(write: Callable[[str], Path]) -> None:
    path = write('name = "x"\nseed = \n')
    assert str(load_error(path)) == f"{path}: line 2, column 8: TOML syntax error: Invalid value"


def test_every_problem_is_reported_at_once(write: Callable[[str], Path]) -> None:
    text = (
        SMALL.replace("seed = 3", "seed = -1").replace(
            'payment_order = "copayer_first"', 'payment_order = "cash_first"'
        )
        + region("42010")
        + "[population]\nbalance_fen = { min = 9, max = 1 }\n"
    )
    error = load_error(write(text))
    assert len(error.problems) == 4
    assert [p.split(": ")[1] for p in error.problems] == [
        "top level",
        "regions[1] (510100)",
        "regions[3] (42010)",
        "population",
    ]


def test_an_unreadable_file_is_a_scenario_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    assert str(load_error(missing)).startswith(f"{missing}: cannot read")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'name = "\xff"\n')
    assert str(load_error(binary)) == f"{binary}: line 1: not UTF-8 text"


def test_scenario_error_is_a_value_error() -> None:
    assert issubclass(ScenarioError, ValueError)
