"""Subnet CIDR maths."""

from __future__ import annotations

import ipaddress

import pytest

from infra.addressing import plan_subnets


def test_slash16_gives_slash20_public_then_private() -> None:
    plan = plan_subnets("10.40.0.0/16", 2)
    assert plan.public == ("10.40.0.0/20", "10.40.16.0/20")
    assert plan.private == ("10.40.32.0/20", "10.40.48.0/20")


@pytest.mark.parametrize(("cidr", "azs"), [("10.0.0.0/16", 6), ("172.16.0.0/22", 3), ("192.168.0.0/18", 2)])
def test_subnets_are_disjoint_and_inside_the_vpc(cidr: str, azs: int) -> None:
    plan = plan_subnets(cidr, azs)
    vpc = ipaddress.IPv4Network(cidr)
    nets = [ipaddress.IPv4Network(c) for c in (*plan.public, *plan.private)]
    assert len(plan.public) == len(plan.private) == azs
    assert all(n.subnet_of(vpc) for n in nets)
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    assert all(n.prefixlen == vpc.prefixlen + 4 for n in nets)


def test_too_small_vpc_is_refused() -> None:
    with pytest.raises(ValueError, match="/28"):
        plan_subnets("10.0.0.0/25", 2)


def test_too_many_azs_is_refused() -> None:
    with pytest.raises(ValueError, match="az_count=9"):
        plan_subnets("10.0.0.0/16", 9)
