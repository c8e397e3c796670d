"""Load balancer policy over a mocked run."""

from __future__ import annotations

import json
import re
from ipaddress import ip_address, ip_network

import pytest

from infra.validation import ConfigError
from tests.infra.harness import (
    BASE_CONFIG,
    HTTPS_CONFIG,
    OIDC_CLIENT_SECRET,
    OIDC_SECRET_ARN,
    ProgramRun,
    Recorded,
    is_secret_input,
    run_program,
    strings_in,
    unwrap,
)

LISTENER = "aws:lb/listener:Listener"
RULE = "aws:lb/listenerRule:ListenerRule"


def alb_path_matches(pattern: str, path: str) -> bool:
    """ALB path-pattern semantics: case-sensitive, ``*`` any characters, ``?`` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, path) is not None


def test_idle_timeout_outlasts_claude_codes_600s(http_stack: ProgramRun, run) -> None:
    assert http_stack.one("aws:lb/loadBalancer:LoadBalancer").inputs["idleTimeout"] >= 900
    custom = run({**BASE_CONFIG, "albIdleTimeoutS": 1200}).one("aws:lb/loadBalancer:LoadBalancer")
    assert custom.inputs["idleTimeout"] == 1200


def test_alb_is_public_and_drops_invalid_headers(http_stack: ProgramRun) -> None:
    alb = http_stack.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["internal"] is False and alb["loadBalancerType"] == "application"
    assert alb["dropInvalidHeaderFields"] is True
    assert alb["securityGroups"] == [http_stack.named("network-alb-sg").id]


def test_alb_deletion_protection_follows_config(http_stack: ProgramRun, run) -> None:
    assert http_stack.one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is True
    loose = run({**BASE_CONFIG, "deletionProtection": False}).one("aws:lb/loadBalancer:LoadBalancer")
    assert loose.inputs["enableDeletionProtection"] is False


def listeners_by_port(stack: ProgramRun) -> dict[int, Recorded]:
    return {listener.inputs["port"]: listener for listener in stack.of_type(LISTENER)}


def rules_on(stack: ProgramRun, listener: Recorded) -> list[Recorded]:
    arn = f"arn:aws:lb:us-east-1:123456789012:listener/{listener.name}"
    return sorted((r for r in stack.of_type(RULE) if r.inputs["listenerArn"] == arn), key=lambda r: r.inputs["priority"])


def route(stack: ProgramRun, port: int, method: str, path: str, source_ip: str = "192.0.2.10") -> dict:
    """What the ALB does with a request, evaluating the listener's rules by priority as AWS does."""
    listener = listeners_by_port(stack)[port]
    for rule in rules_on(stack, listener):
        matched = True
        for condition in rule.inputs["conditions"]:
            if "pathPattern" in condition:
                matched &= any(alb_path_matches(p, path) for p in condition["pathPattern"]["values"])
            if "httpRequestMethod" in condition:
                matched &= method in condition["httpRequestMethod"]["values"]
            if "sourceIp" in condition:
                matched &= any(ip_address(source_ip) in ip_network(c) for c in condition["sourceIp"]["values"])
        if matched:
            actions = unwrap(rule.inputs["actions"])  # secret-marked as a whole when OIDC carries a secret
            return actions[-1] | {"all": actions, "secret": is_secret_input(rule.inputs["actions"])}
    return listener.inputs["defaultActions"][-1] | {"all": listener.inputs["defaultActions"]}


def envelope(action: dict) -> dict:
    assert action["type"] == "fixed-response", action
    assert action["fixedResponse"]["contentType"] == "application/json"
    return json.loads(action["fixedResponse"]["messageBody"])


def test_https_listener_uses_the_certificate_and_a_tls13_policy(https_stack: ProgramRun) -> None:
    listeners = listeners_by_port(https_stack)
    assert set(listeners) == {80, 443}
    https = listeners[443].inputs
    assert https["protocol"] == "HTTPS" and https["certificateArn"] == HTTPS_CONFIG["certificateArn"]
    assert https["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
    assert https["defaultActions"][0]["type"] == "forward"


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens", "/ak/abc/v1/messages", "/admin/users", "/health"])
def test_port_80_refuses_api_calls_in_the_error_envelope(https_stack: ProgramRun, method: str, path: str) -> None:
    action = route(https_stack, 80, method, path)
    assert action["fixedResponse"]["statusCode"] == "403"
    assert envelope(action) == {"type": "error", "error": {"type": "permission_error", "message": "use https"}}


@pytest.mark.parametrize("path", ["/", "/ui", "/ui/keys"])
def test_port_80_redirects_only_dashboard_gets(https_stack: ProgramRun, path: str) -> None:
    for method in ("GET", "HEAD"):
        action = route(https_stack, 80, method, path)
        assert action["type"] == "redirect"
        assert action["redirect"] == {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}
    assert route(https_stack, 80, "POST", path)["type"] == "fixed-response"


def test_plain_http_only_when_asked_for_and_warned_about_loudly(http_stack: ProgramRun) -> None:
    (listener,) = http_stack.of_type(LISTENER)
    assert (listener.inputs["port"], listener.inputs["protocol"]) == (80, "HTTP")
    assert listener.inputs["defaultActions"][0]["type"] == "forward"
    assert any("PLAIN HTTP" in w for w in http_stack.outputs["warnings"])
    assert any("PLAIN HTTP" in w for w in http_stack.warnings)  # pulumi.log.warn on every preview/up


def test_no_https_and_no_opt_out_stops_the_program() -> None:
    with pytest.raises(ConfigError, match="HTTPS is required"):
        run_program({"aws:region": "us-east-1"})


def test_domain_and_zone_create_a_dns_validated_certificate(run) -> None:
    stack = run({"aws:region": "us-east-1", "domainName": "proxy.example.com", "hostedZoneId": "Z0123456789ABC"})
    certificate = stack.one("aws:acm/certificate:Certificate").inputs
    assert certificate == {"domainName": "proxy.example.com", "validationMethod": "DNS"} | {
        k: v for k, v in certificate.items() if k not in ("domainName", "validationMethod")
    }
    records = {r.name: r.inputs for r in stack.of_type("aws:route53/record:Record")}
    validation_record = records["edge-certificate-validation"]
    assert validation_record["type"] == "CNAME" and validation_record["zoneId"] == "Z0123456789ABC"
    assert validation_record["records"] == ["_y2.acm-validations.aws."]
    validation = stack.one("aws:acm/certificateValidation:CertificateValidation").inputs
    assert validation["validationRecordFqdns"] == ["_x1.proxy.example.com"]
    https = listeners_by_port(stack)[443].inputs
    assert https["certificateArn"] == validation["certificateArn"]  # the listener waits for validation
    assert records["edge-alias"]["name"] == "proxy.example.com"
    assert stack.outputs["proxyBaseUrl"] == "https://proxy.example.com"
    assert not any("PLAIN HTTP" in w for w in stack.warnings)


ADMIN = ["/ui", "/ui/keys", "/admin/users", "/admin/model-map/claude-x"]


@pytest.mark.parametrize("path", ADMIN)
def test_admin_paths_only_from_the_allowed_cidrs(run, path: str) -> None:
    stack = run({**HTTPS_CONFIG, "adminAllowedCidrs": ["203.0.113.0/24", "2001:db8::/32"]})
    assert route(stack, 443, "GET", path, "203.0.113.7")["type"] == "forward"
    assert route(stack, 443, "GET", path, "2001:db8::1")["type"] == "forward"
    action = route(stack, 443, "GET", path, "198.51.100.1")
    assert action["fixedResponse"]["statusCode"] == "403"
    assert envelope(action)["error"]["type"] == "permission_error"
    # API paths stay open to everyone
    assert route(stack, 443, "POST", "/v1/messages", "198.51.100.1")["type"] == "forward"


def test_no_admin_cidrs_means_no_admin_from_the_internet(run) -> None:
    stack = run({k: v for k, v in HTTPS_CONFIG.items() if k != "adminAllowedCidrs"})
    for path in ADMIN:
        assert route(stack, 443, "GET", path, "203.0.113.7")["fixedResponse"]["statusCode"] == "403"
    assert route(stack, 443, "POST", "/ak/key/v1/messages", "203.0.113.7")["type"] == "forward"
    assert any("adminAllowedCidrs is empty" in w for w in stack.warnings)


def test_percent_encoded_paths_cannot_sneak_past_the_admin_rule(run) -> None:
    stack = run({**HTTPS_CONFIG, "adminAllowedCidrs": ["203.0.113.0/24"]})
    assert route(stack, 443, "GET", "/%75i/keys", "198.51.100.1")["fixedResponse"]["statusCode"] == "403"
    # an encoded character inside an admin path from an allowed address still works
    assert route(stack, 443, "PUT", "/admin/model-map/claude-x%5B1m%5D", "203.0.113.7")["type"] == "forward"
    assert route(stack, 443, "POST", "/v1/messages", "198.51.100.1")["type"] == "forward"


def test_many_admin_cidrs_are_split_within_the_alb_condition_limit(run) -> None:
    cidrs = [f"10.{i}.0.0/16" for i in range(9)]
    stack = run({**HTTPS_CONFIG, "adminAllowedCidrs": cidrs})
    for rule in stack.of_type(RULE):
        values = sum(len(next(iter(c.values()))["values"]) for c in rule.inputs["conditions"])
        assert values <= 5, rule.name
    for listener in stack.of_type(LISTENER):
        priorities = [r.inputs["priority"] for r in rules_on(stack, listener)]
        assert len(set(priorities)) == len(priorities)
    for cidr in cidrs:
        host = cidr.replace(".0.0/16", ".1.1")
        assert route(stack, 443, "GET", "/ui", host)["type"] == "forward", cidr


def test_oidc_in_front_of_the_admin_paths(run) -> None:
    oidc = {
        "issuer": "https://idp.example.com",
        "authorizationEndpoint": "https://idp.example.com/authorize",
        "tokenEndpoint": "https://idp.example.com/token",
        "userInfoEndpoint": "https://idp.example.com/userinfo",
        "clientId": "claude-code-proxy",
        "clientSecretArn": OIDC_SECRET_ARN,
    }
    stack = run({**HTTPS_CONFIG, "adminAllowedCidrs": ["203.0.113.0/24"], "adminOidc": oidc})
    for path, unauthenticated in (("/ui/keys", "authenticate"), ("/admin/users", "deny")):
        action = route(stack, 443, "GET", path, "203.0.113.7")
        first, second = action["all"]
        assert (first["type"], first["order"], second["type"], second["order"]) == (
            "authenticate-oidc", 1, "forward", 2,
        )
        auth = first["authenticateOidc"]
        assert auth["issuer"] == "https://idp.example.com" and auth["clientId"] == "claude-code-proxy"
        assert auth["onUnauthenticatedRequest"] == unauthenticated
        assert action["secret"] and auth["clientSecret"] == OIDC_CLIENT_SECRET  # kept secret in the state
    assert route(stack, 443, "POST", "/v1/messages", "203.0.113.7")["all"][0]["type"] == "forward"
    # the ALB must reach the IdP's token endpoint
    egress = [r.inputs for r in stack.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
              if r.name == "network-alb-to-idp"]
    assert egress and egress[0]["fromPort"] == 443
    assert stack.secret_outputs == set()
    assert not any(OIDC_CLIENT_SECRET in v for v in strings_in(stack.outputs))


def test_metrics_is_answered_404_by_the_alb_on_the_serving_listener(
    http_stack: ProgramRun, https_stack: ProgramRun
) -> None:
    for stack, serving_port in ((http_stack, 80), (https_stack, 443)):
        for path in ("/metrics", "/metrics/", "/metrics/foo"):
            action = route(stack, serving_port, "GET", path, "203.0.113.7")
            assert action["fixedResponse"]["statusCode"] == "404"
            assert envelope(action)["error"]["type"] == "not_found_error"
        for path in ("/v1/messages", "/health", "/ready"):
            assert route(stack, serving_port, "POST", path)["type"] == "forward", path


def test_fixed_responses_fit_the_alb_limit() -> None:
    from infra import load_balancer

    for body in (load_balancer.USE_HTTPS_BODY, load_balancer.ADMIN_FORBIDDEN_BODY, load_balancer.ENCODED_PATH_BODY):
        assert len(body) <= 1024 and json.loads(body)["type"] == "error"
    with pytest.raises(ValueError, match="exceeds"):
        load_balancer.error_envelope("api_error", "x" * 2000)


def test_target_group_checks_health_and_drains(http_stack: ProgramRun, run) -> None:
    group = http_stack.one("aws:lb/targetGroup:TargetGroup").inputs
    assert group["healthCheck"]["path"] == "/health" and group["healthCheck"]["matcher"] == "200"
    assert group["targetType"] == "ip" and group["port"] == 8080
    assert group["deregistrationDelay"] == 660
    tuned = run({**BASE_CONFIG, "deregistrationDelayS": 120}).one("aws:lb/targetGroup:TargetGroup")
    assert tuned.inputs["deregistrationDelay"] == 120


def test_alias_record_only_with_a_hosted_zone(https_stack: ProgramRun, run) -> None:
    assert https_stack.of_type("aws:route53/record:Record") == []
    stack = run({**HTTPS_CONFIG, "hostedZoneId": "Z0123456789ABCDEFGHIJ"})
    record = stack.one("aws:route53/record:Record").inputs
    assert record["name"] == "proxy.example.com" and record["type"] == "A"
    assert record["aliases"][0]["name"] == stack.outputs["loadBalancerDnsName"]
