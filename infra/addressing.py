"""Subnet CIDR maths for the VPC (pure; no Pulumi).

The VPC is cut into 16 equal blocks (``prefix + 4``): a /16 gives /20 subnets (4,091 usable
addresses each), a /22 gives /26 subnets (59 usable, still above the ALB's minimum of a /27 with
8 free addresses). Public subnets take the first ``az_count`` blocks, private subnets the next
``az_count``; the remaining blocks stay free for later tiers.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class SubnetPlan:
    """CIDRs per AZ index: ``public[i]`` and ``private[i]`` live in the i-th availability zone."""

    public: tuple[str, ...]
    private: tuple[str, ...]


def plan_subnets(vpc_cidr: str, az_count: int) -> SubnetPlan:
    """Split ``vpc_cidr`` into ``az_count`` public and ``az_count`` private subnets of 1/16 each.

    Raises ValueError if the CIDR is not an IPv4 network or if 2 * az_count exceeds 16 blocks or the
    blocks would be smaller than a /28 (AWS's smallest subnet).
    """
    network = ipaddress.IPv4Network(vpc_cidr, strict=True)
    new_prefix = network.prefixlen + 4
    if new_prefix > 28:
        raise ValueError(f"{vpc_cidr} is too small: subnets would be /{new_prefix}, AWS's smallest is /28")
    if not 1 <= az_count <= 8:
        raise ValueError(f"az_count={az_count}: 2 * az_count blocks must fit in the 16 available")
    blocks = [str(block) for block in network.subnets(new_prefix=new_prefix)]
    return SubnetPlan(public=tuple(blocks[:az_count]), private=tuple(blocks[az_count : 2 * az_count]))
