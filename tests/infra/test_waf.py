"""The optional WAF: managed rules that leave Claude Code's Messages API bodies alone, a rate limit."""

from __future__ import annotations

import re

import pytest

from infra.waf import API_PATH_REGEX, web_acl_rules
from tests.infra.harness import BASE_CONFIG


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/v1/messages", True),
        ("/v1/messages/count_tokens", True),
        ("/ak/cc_live_abc123/v1/messages", True),
        ("/ak/cc_live_abc123/v1/messages/count_tokens", True),
        ("/ui/login", False),
        ("/admin/keys", False),
        ("/v1/messages/../../admin", False),
        ("/ak/a/b/v1/messages", False),
        ("/x/v1/messages", False),
    ],
)
def test_api_path_regex_matches_exactly_the_messages_endpoints(path: str, api: bool) -> None:
    assert bool(re.fullmatch(API_PATH_REGEX, path)) is api


def test_common_rule_set_skips_the_api_paths_so_8kb_bodies_pass() -> None:
    rules = {r["name"]: r for r in web_acl_rules(3000, "p")}
    common = rules["AWSManagedRulesCommonRuleSet"]["statement"]["managed_rule_group_statement"]
    regex = common["scope_down_statement"]["not_statement"]["statement"]["regex_match_statement"]
    assert regex["regex_string"] == API_PATH_REGEX and regex["field_to_match"] == {"uri_path": {}}
    # no override of SizeRestrictions_BODY: on every other path oversize bodies stay blocked
    assert "rule_action_overrides" not in common
    bad_inputs = rules["AWSManagedRulesKnownBadInputsRuleSet"]["statement"]["managed_rule_group_statement"]
    assert {o["name"]: o["action_to_use"] for o in bad_inputs["rule_action_overrides"]} == {
        "JavaDeserializationRCE_BODY": {"count": {}},
        "Log4JRCE_BODY": {"count": {}},
    }
    assert "AWSManagedRulesAmazonIpReputationList" in rules


def test_rate_limit_per_ip_over_five_minutes_is_evaluated_first() -> None:
    rules = web_acl_rules(1234, "p")
    assert [r["priority"] for r in rules] == list(range(len(rules)))
    rate = rules[0]
    assert rate["action"] == {"block": {}}
    assert rate["statement"]["rate_based_statement"] == {
        "limit": 1234,
        "aggregate_key_type": "IP",
        "evaluation_window_sec": 300,
    }
    assert all(r["visibility_config"]["cloudwatch_metrics_enabled"] for r in rules)


def test_waf_is_off_by_default_and_on_attaches_to_the_alb(http_stack, run) -> None:
    assert http_stack.of_type("aws:wafv2/webAcl:WebAcl") == []
    stack = run({**BASE_CONFIG, "waf": "true", "wafRateLimit": 500})
    acl = stack.one("aws:wafv2/webAcl:WebAcl").inputs
    assert acl["scope"] == "REGIONAL" and acl["defaultAction"] == {"allow": {}}
    assert acl["rules"][0]["statement"]["rateBasedStatement"]["limit"] == 500
    association = stack.one("aws:wafv2/webAclAssociation:WebAclAssociation").inputs
    assert association["resourceArn"] == "arn:aws:lb:us-east-1:123456789012:loadbalancer/edge-alb"
