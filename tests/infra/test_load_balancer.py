"""Load balancer policy over a mocked run."""

from __future__ import annotations

import re

from tests.infra.harness import BASE_CONFIG, HTTPS_CONFIG, ProgramRun

LISTENER = "aws:lb/listener:Listener"
RULE = "aws:lb/listenerRule:ListenerRule"


def alb_path_matches(pattern: str, path: str) -> bool:
    """ALB path-pattern semantics: case-sensitive, ``*`` any characters, ``?`` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, path) is not None


def test_idle_timeout_outlasts_claude_codes_600s(http_stack: ProgramRun, run) -> None:  # noqa: ANN001
    assert http_stack.one("aws:lb/loadBalancer:LoadBalancer").inputs["idleTimeout"] >= 900
    custom = run({**BASE_CONFIG, "albIdleTimeoutS": 1200}).one("aws:lb/loadBalancer:LoadBalancer")
    assert custom.inputs["idleTimeout"] == 1200


def test_alb_is_public_and_drops_invalid_headers(http_stack: ProgramRun) -> None:
    alb = http_stack.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["internal"] is False and alb["loadBalancerType"] == "application"
    assert alb["dropInvalidHeaderFields"] is True
    assert alb["securityGroups"] == [http_stack.named("network-alb-sg").id]


def test_alb_deletion_protection_follows_config(http_stack: ProgramRun, run) -> None:  # noqa: ANN001
    assert http_stack.one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is True
    loose = run({**BASE_CONFIG, "deletionProtection": False}).one("aws:lb/loadBalancer:LoadBalancer")
    assert loose.inputs["enableDeletionProtection"] is False


def test_https_with_certificate_and_http_redirected(https_stack: ProgramRun) -> None:
    listeners = {listener.inputs["port"]: listener.inputs for listener in https_stack.of_type(LISTENER)}
    assert set(listeners) == {80, 443}
    https = listeners[443]
    assert https["protocol"] == "HTTPS" and https["certificateArn"] == HTTPS_CONFIG["certificateArn"]
    assert https["sslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    assert https["defaultActions"][0]["type"] == "forward"
    (redirect,) = listeners[80]["defaultActions"]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"]["protocol"] == "HTTPS" and redirect["redirect"]["port"] == "443"
    assert redirect["redirect"]["statusCode"] == "HTTP_301"


def test_plain_http_only_without_certificate_and_says_so(http_stack: ProgramRun) -> None:
    (listener,) = http_stack.of_type(LISTENER)
    assert (listener.inputs["port"], listener.inputs["protocol"]) == (80, "HTTP")
    assert listener.inputs["defaultActions"][0]["type"] == "forward"
    assert any("plain HTTP" in w for w in http_stack.outputs["warnings"])


def test_metrics_is_answered_404_by_the_alb_on_the_serving_listener(
    http_stack: ProgramRun, https_stack: ProgramRun
) -> None:
    for stack, serving_port in ((http_stack, 80), (https_stack, 443)):
        (rule,) = stack.of_type(RULE)
        listener = next(x for x in stack.of_type(LISTENER) if x.inputs["port"] == serving_port)
        assert rule.inputs["listenerArn"] == f"arn:aws:lb:us-east-1:123456789012:listener/{listener.name}"
        (action,) = rule.inputs["actions"]
        assert action["type"] == "fixed-response" and action["fixedResponse"]["statusCode"] == "404"
        patterns = [p for c in rule.inputs["conditions"] for p in c["pathPattern"]["values"]]
        for path in ("/metrics", "/metrics/", "/metrics/foo", "/metrics?x=1"):
            assert any(alb_path_matches(p, path) for p in patterns), path
        for path in ("/v1/messages", "/health", "/ui", "/ready"):
            assert not any(alb_path_matches(p, path) for p in patterns), path


def test_target_group_checks_health_and_drains(http_stack: ProgramRun, run) -> None:  # noqa: ANN001
    group = http_stack.one("aws:lb/targetGroup:TargetGroup").inputs
    assert group["healthCheck"]["path"] == "/health" and group["healthCheck"]["matcher"] == "200"
    assert group["targetType"] == "ip" and group["port"] == 8080
    assert group["deregistrationDelay"] == 660
    tuned = run({**BASE_CONFIG, "deregistrationDelayS": 120}).one("aws:lb/targetGroup:TargetGroup")
    assert tuned.inputs["deregistrationDelay"] == 120


def test_alias_record_only_with_a_hosted_zone(https_stack: ProgramRun, run) -> None:  # noqa: ANN001
    assert https_stack.of_type("aws:route53/record:Record") == []
    stack = run({**HTTPS_CONFIG, "hostedZoneId": "Z0123456789ABCDEFGHIJ"})
    record = stack.one("aws:route53/record:Record").inputs
    assert record["name"] == "proxy.example.com" and record["type"] == "A"
    assert record["aliases"][0]["name"] == stack.outputs["loadBalancerDnsName"]
