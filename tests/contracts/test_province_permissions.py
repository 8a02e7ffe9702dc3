"""A province host's user: what it may send and where, for which regions (no broker)."""

from __future__ import annotations

import re

import pytest

from broker.users import BrokerUser, may_publish, topic_permissions
from contracts.identifiers import province_of
from contracts.operations import Commit, RequestAid, ReserveResult
from contracts.participants import Participant, Role, participant_of, province, region
from contracts.permissions import FORBIDDEN, IMPERSONATION, refusal

GUANGDONG = province("440000")


def test_a_region_code_belongs_to_the_province_of_its_first_two_digits() -> None:
    assert province_of("440300") == "440000"
    assert province_of("110000") == "110000"  # a municipality is its own province
    with pytest.raises(ValueError, match="region code"):
        province_of("44030")


def test_a_province_participant_is_named_by_its_province_code() -> None:
    assert GUANGDONG.user("ns") == "ns.province.440000"
    assert participant_of("ns.province.440000", "ns") == GUANGDONG
    assert participant_of("ns.province.440300", "ns") is None  # not a province code
    with pytest.raises(ValueError, match="province code"):
        Participant(Role.PROVINCE, "440300")
    with pytest.raises(ValueError, match="no queue"):
        _ = GUANGDONG.address


def test_it_speaks_for_the_regions_of_its_province_only() -> None:
    assert GUANGDONG.speaks_for("440100") and GUANGDONG.speaks_for("440300")
    assert not GUANGDONG.speaks_for("420100")
    assert region("440100").speaks_for("440100") and not region("440100").speaks_for("440300")


def test_its_answers_are_a_regions_for_its_own_regions_and_refused_for_others() -> None:
    assert refusal(GUANGDONG, ReserveResult("t", "440300", 1)) is None
    assert refusal(GUANGDONG, RequestAid("t", "p", "440100", 1)) is None
    assert refusal(GUANGDONG, ReserveResult("t", "420100", 1)) == IMPERSONATION
    assert refusal(GUANGDONG, RequestAid("t", "p", "420100", 1)) == IMPERSONATION
    assert refusal(GUANGDONG, Commit("t")) == FORBIDDEN  # the hub's alone


def test_the_broker_confines_it_to_its_regions_queues() -> None:
    read = re.compile(topic_permissions(GUANGDONG)["read"])
    assert read.match("region.440100") and read.match("region.440300")
    assert not read.match("region.420100") and not read.match("clearinghouse")
    assert may_publish(GUANGDONG, "clearinghouse") and may_publish(GUANGDONG, "client.load")
    assert not may_publish(GUANGDONG, "region.440100")
    vhost = BrokerUser(GUANGDONG, "ns", "pw").permissions()
    for kind in ("configure", "read"):
        assert re.match(vhost[kind], "ns.region.440300"), kind
        assert not re.match(vhost[kind], "ns.region.420100"), kind
        assert not re.match(vhost[kind], "ns.clearinghouse"), kind
