"""StackConfig's derived values and the stable resource prefix (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from infra.stack_config import StackConfig, resource_prefix

VALID = StackConfig(name="claude-code-proxy-test", region="us-east-1")
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0f5b5a29-1111-2222-3333-444455556666"


def test_derived_values() -> None:
    assert VALID.docdb_parameter_family == "docdb5.0"
    assert replace(VALID, docdb_engine_version="8.0.0").docdb_parameter_family == "docdb8.0"
    assert VALID.graceful_shutdown_s == 110 < VALID.stop_timeout_s
    assert VALID.keepalive_timeout_s == VALID.alb_idle_timeout_s + 5 == 905
    assert replace(VALID, alb_idle_timeout_s=1200).keepalive_timeout_s == 1205
    assert VALID.effective_bedrock_region == "us-east-1"
    assert replace(VALID, bedrock_region="us-west-2").effective_bedrock_region == "us-west-2"
    assert not VALID.https and replace(VALID, certificate_arn=CERT).https


@pytest.mark.parametrize(
    ("project", "stack", "expected"),
    [
        ("claude-code-proxy", "dev", "claude-code-proxy-dev"),
        ("claude-code-proxy", "Prod_EU", "claude-code-proxy-prod-eu"),
        ("9lives", "x", "p-9lives-x"),
        ("claude-code-proxy", "a-very-long-stack-name-that-goes-on-and-on", "claude-code-proxy-a-very-long-stack-name"),
    ],
)
def test_resource_prefix_is_a_valid_docdb_identifier(project: str, stack: str, expected: str) -> None:
    prefix = resource_prefix(project, stack)
    assert prefix == expected
    assert len(prefix) <= 40 and prefix[0].isalpha() and "--" not in prefix and not prefix.endswith("-")


@pytest.mark.parametrize(
    ("instance_class", "max_count", "pool"),
    [("db.t4g.medium", 6, 73), ("db.t4g.medium", 12, 35), ("db.r6g.large", 6, 100), ("db.r6g.large", 40, 36)],
)
def test_pool_size_keeps_max_tasks_within_the_instance_connection_limit(
    instance_class: str, max_count: int, pool: int
) -> None:
    from infra.aws_facts import DOCDB_MAX_CONNECTIONS
    from infra.stack_config import PYMONGO_MONITOR_CONNECTIONS

    config = replace(VALID, docdb_instance_class=instance_class, max_count=max_count)
    assert config.mongodb_max_pool_size == pool
    # every task at full pool, plus the driver's monitoring connections, fits one instance's limit
    assert max_count * (pool + PYMONGO_MONITOR_CONNECTIONS) <= DOCDB_MAX_CONNECTIONS[instance_class]
