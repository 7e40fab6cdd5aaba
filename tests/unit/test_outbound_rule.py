"""The outbound address rule: public unicast only, unless allow-listed."""

from __future__ import annotations

import pytest

from domain.outbound import DEFAULT_ALLOW, OutboundRuleError, parse_allow_list, refusal

DEFAULT = parse_allow_list(DEFAULT_ALLOW)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",  # AWS/GCP/Azure metadata
        "fe80::1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",
        "fd00:ec2::254",  # AWS metadata over IPv6
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
    ],
)
def test_private_and_special_addresses_are_refused(address: str) -> None:
    assert refusal(address, DEFAULT) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::6810:84e5", "127.0.0.1", "::1"])
def test_public_and_default_allowed_addresses_pass(address: str) -> None:
    assert refusal(address, DEFAULT) is None


def test_the_allow_list_opens_exactly_what_it_names() -> None:
    allowed = parse_allow_list(" 10.1.2.0/24 , fd00::5 ")
    assert refusal("10.1.2.9", allowed) is None
    assert refusal("fd00::5", allowed) is None
    assert refusal("10.1.3.1", allowed) is not None
    assert refusal("127.0.0.1", parse_allow_list("")) == "a loopback address"


def test_a_malformed_allow_list_is_refused() -> None:
    with pytest.raises(OutboundRuleError, match="not-a-net"):
        parse_allow_list("10.0.0.0/8,not-a-net")
