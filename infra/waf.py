"""Optional WAF (``waf: true``): a regional WAFv2 web ACL on the ALB with AWS managed rules and a
per-IP rate limit.

The common rule set's body rules would block normal Claude Code turns: ``SizeRestrictions_BODY``
blocks bodies over 8 KB (a conversation is far larger), ``CrossSiteScripting_BODY`` and
``GenericLFI_BODY`` match the code that prompts quote. So that group is scoped down to every path
*except* the Messages API (:data:`API_PATH_REGEX`, header and ``/ak/<key>/`` forms, count_tokens
included); on the other paths (dashboard, admin API, health) it applies in full, oversize bodies
included. The known-bad-inputs group runs everywhere, with its two body rules counted only (a prompt
may quote a Log4Shell string). The IP reputation list and the rate limit apply everywhere.
Sources: docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html,
docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

#: The proxy's Messages API paths, header form and path form (``/ak/<key>/...``). Bodies there are
#: whole conversations (often far above 8 KB, full of code), so body-inspecting rules skip them.
API_PATH_REGEX = r"^(/ak/[^/]+)?/v1/messages(/count_tokens)?$"
#: Body rules of AWSManagedRulesKnownBadInputsRuleSet, counted rather than blocking.
KNOWN_BAD_INPUTS_BODY_RULES = ("JavaDeserializationRCE_BODY", "Log4JRCE_BODY")


def _visibility(metric_name: str) -> dict[str, Any]:
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric_name, "sampled_requests_enabled": True}


def _managed(priority: int, group: str, metric: str, **statement: Any) -> dict[str, Any]:
    return {
        "name": group,
        "priority": priority,
        "override_action": {"none": {}},
        "statement": {"managed_rule_group_statement": {"vendor_name": "AWS", "name": group, **statement}},
        "visibility_config": _visibility(metric),
    }


def web_acl_rules(rate_limit: int, metric_prefix: str) -> list[dict[str, Any]]:
    """The web ACL's rules, in evaluation order (Pulumi input shape, snake_case keys).
    ``rate_limit``: requests per source IP per 5 minutes before that IP is blocked."""
    api_path = {
        "regex_match_statement": {
            "regex_string": API_PATH_REGEX,
            "field_to_match": {"uri_path": {}},
            "text_transformations": [{"priority": 0, "type": "NONE"}],
        }
    }
    return [
        {
            "name": "RatePerIp",
            "priority": 0,
            "action": {"block": {}},
            "statement": {
                "rate_based_statement": {"limit": rate_limit, "aggregate_key_type": "IP", "evaluation_window_sec": 300}
            },
            "visibility_config": _visibility(f"{metric_prefix}-rate"),
        },
        _managed(1, "AWSManagedRulesAmazonIpReputationList", f"{metric_prefix}-ip-reputation"),
        _managed(
            2,
            "AWSManagedRulesKnownBadInputsRuleSet",
            f"{metric_prefix}-known-bad-inputs",
            rule_action_overrides=[{"name": r, "action_to_use": {"count": {}}} for r in KNOWN_BAD_INPUTS_BODY_RULES],
        ),
        _managed(
            3,
            "AWSManagedRulesCommonRuleSet",
            f"{metric_prefix}-common",
            scope_down_statement={"not_statement": {"statement": api_path}},
        ),
    ]


@dataclass(frozen=True)
class WebFirewallArgs:
    """``rate_limit``: requests per source IP per 5 minutes."""

    name_prefix: str
    load_balancer_arn: pulumi.Input[str]
    rate_limit: int


class WebFirewall(pulumi.ComponentResource):
    """A regional WAFv2 web ACL (default allow) associated with the ALB. Outputs: web_acl_arn."""

    def __init__(self, name: str, args: WebFirewallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:edge:WebFirewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        acl = aws.wafv2.WebAcl(
            f"{name}-acl",
            scope="REGIONAL",
            default_action={"allow": {}},
            rules=web_acl_rules(args.rate_limit, args.name_prefix),
            visibility_config=_visibility(f"{args.name_prefix}-waf"),
            opts=child,
        )
        aws.wafv2.WebAclAssociation(f"{name}-alb", resource_arn=args.load_balancer_arn, web_acl_arn=acl.arn, opts=child)
        self.web_acl_arn = acl.arn
        self.register_outputs({"web_acl_arn": self.web_acl_arn})
