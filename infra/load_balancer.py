"""Load balancer: internet-facing ALB in the public subnets, one IP target group for the tasks.

- HTTPS by default: 443 with the given ACM certificate, or one the program requests for
  ``domainName`` and validates through the Route 53 zone; TLS policy from the TLS 1.3 family.
  Port 80 then answers with a fixed 403 in Anthropic's error envelope ("use https"): a redirect
  would let a client resend a POST as GET after its credential already crossed the network in
  clear. Only GET/HEAD of the dashboard (``/``, ``/ui*``) are redirected to HTTPS.
- Plain HTTP on 80 only with ``allowInsecureHttp`` (the stack then warns loudly).
- Admin paths (``/ui*``, ``/admin*``) are forwarded only from ``adminAllowedCidrs`` (optionally
  behind ALB ``authenticate-oidc``); from anywhere else they get a 403 envelope. No CIDRs: not
  reachable from the internet at all. Percent-encoded paths are refused outside those CIDRs, so an
  encoded ``/ui`` cannot slip past the path match.
- ``/metrics*`` answered by the ALB itself with a 404: Prometheus scrapes from inside the VPC only.
- Idle timeout above Claude Code's 600 s client timeout, so long streamed turns are not cut; the
  tasks' keep-alive is derived from it (StackConfig.keepalive_timeout_s).
- Invalid header fields dropped (request smuggling), desync mitigation "defensive".
- Target health check on ``/health``, least-outstanding-requests routing (streams are long and
  uneven), deregistration delay to let open streams finish on deploys and scale-in.

Rule actions and limits: docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-action-types.html,
.../listener-authenticate-users.html (OIDC), .../load-balancer-limits.html.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws_facts import ALB_MAX_CONDITION_VALUES_PER_RULE, ALB_MAX_FIXED_RESPONSE_BYTES, DEFAULT_SSL_POLICY
from infra.container import CONTAINER_PORT
from infra.stack_config import OidcConfig

METRICS_PATH_PATTERNS = ("/metrics*",)  # "/metrics", "/metrics/", "/metrics/..." and any suffix
#: Admin areas: the dashboard (browser, OIDC may log in) and the JSON admin API (scripts: OIDC denies).
ADMIN_AREAS: dict[str, tuple[str, ...]] = {"ui": ("/ui*",), "admin": ("/admin*",)}
ADMIN_PATH_PATTERNS = tuple(p for patterns in ADMIN_AREAS.values() for p in patterns)
#: On port 80 with TLS, only these GET/HEAD paths are redirected to HTTPS (a browser typing the name).
REDIRECT_PATH_PATTERNS = ("/", "/ui*")
ENCODED_PATH_PATTERNS = ("*%*",)

METRICS_BLOCK_PRIORITY = 1
ADMIN_ALLOW_FIRST_PRIORITY = 10
ENCODED_PATH_BLOCK_PRIORITY = 90
ADMIN_BLOCK_PRIORITY = 91
HTTP_REDIRECT_PRIORITY = 1


def error_envelope(error_type: str, message: str) -> str:
    """Anthropic's error body ``{"type":"error","error":{"type":...,"message":...}}`` as compact JSON.
    Raises ValueError when it exceeds the ALB's fixed-response limit."""
    body = json.dumps({"type": "error", "error": {"type": error_type, "message": message}}, separators=(",", ":"))
    if len(body) > ALB_MAX_FIXED_RESPONSE_BYTES:
        raise ValueError(f"fixed-response body of {len(body)} bytes exceeds {ALB_MAX_FIXED_RESPONSE_BYTES}")
    return body


USE_HTTPS_BODY = error_envelope("permission_error", "use https")
ADMIN_FORBIDDEN_BODY = error_envelope(
    "permission_error", "the dashboard and admin API are not reachable from this address"
)
ENCODED_PATH_BODY = error_envelope("permission_error", "percent-encoded paths are not accepted")
METRICS_NOT_FOUND_BODY = error_envelope("not_found_error", "Not Found")


def fixed_json(status_code: int, body: str) -> dict[str, Any]:
    """A ``fixed-response`` action answering ``body`` as application/json."""
    return {
        "type": "fixed-response",
        "fixed_response": {"content_type": "application/json", "message_body": body, "status_code": str(status_code)},
    }


def admin_cidr_chunks(cidrs: Sequence[str], patterns_per_rule: int) -> list[list[str]]:
    """Split ``cidrs`` so each rule stays within the ALB's condition values per rule
    (path patterns and source IPs both count). Empty input -> no chunks."""
    size = ALB_MAX_CONDITION_VALUES_PER_RULE - patterns_per_rule
    return [list(cidrs[i : i + size]) for i in range(0, len(cidrs), size)]


@dataclass(frozen=True)
class LoadBalancerArgs:
    """Times in seconds. ``https`` False -> plain HTTP on 80 (the caller checked allowInsecureHttp).
    With ``https``: ``certificate_arn`` given, or None to request one for ``domain_name`` validated in
    ``hosted_zone_id``. ``hosted_zone_id`` + ``domain_name`` also create a Route 53 alias record.
    ``oidc_client_secret``: the secret's value (a secret Output) when ``admin_oidc`` is set."""

    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_id: pulumi.Input[str]
    idle_timeout_s: int
    deregistration_delay_s: int
    deletion_protection: bool
    https: bool
    certificate_arn: str | None
    domain_name: str | None
    hosted_zone_id: str | None
    ssl_policy: str = DEFAULT_SSL_POLICY
    admin_allowed_cidrs: Sequence[str] = field(default_factory=tuple)
    admin_oidc: OidcConfig | None = None
    oidc_client_secret: pulumi.Input[str] | None = None
    # --- access logs (access_logs.AccessLogs): bucket name, None = off ---
    access_logs_bucket: pulumi.Input[str] | None = None
    access_logs_prefix: str = "alb"


class LoadBalancer(pulumi.ComponentResource):
    """ALB, target group, listeners and rules. Outputs: dns_name, alb_arn (what the WAF attaches
    to), arn_suffix, target_group_arn, target_group_arn_suffix, listener_arn (the one that forwards
    to the tasks). ``alb`` is the ``aws.lb.LoadBalancer`` itself; its access logs go to
    ``access_logs_bucket`` when one is given."""

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:edge:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=args.subnet_ids,
            security_groups=[args.security_group_id],
            idle_timeout=args.idle_timeout_s,
            drop_invalid_header_fields=True,
            desync_mitigation_mode="defensive",
            enable_http2=True,
            enable_deletion_protection=args.deletion_protection,
            access_logs=None
            if args.access_logs_bucket is None
            else {"bucket": args.access_logs_bucket, "prefix": args.access_logs_prefix, "enabled": True},
            opts=child,
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            port=CONTAINER_PORT,
            protocol="HTTP",
            target_type="ip",
            vpc_id=args.vpc_id,
            deregistration_delay=args.deregistration_delay_s,
            load_balancing_algorithm_type="least_outstanding_requests",
            health_check={
                "path": "/health",
                "protocol": "HTTP",
                "matcher": "200",
                "interval": 15,
                "timeout": 5,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
            },
            opts=child,
        )
        forward = {"type": "forward", "target_group_arn": target_group.arn}

        if args.https:
            serving = aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=self.alb.arn,
                port=443,
                protocol="HTTPS",
                ssl_policy=args.ssl_policy,
                certificate_arn=self._certificate_arn(name, args),
                default_actions=[forward],
                opts=child,
            )
            self._http_refuses_api_calls(name)
        else:
            serving = aws.lb.Listener(
                f"{name}-http", load_balancer_arn=self.alb.arn, port=80, protocol="HTTP", default_actions=[forward], opts=child
            )

        aws.lb.ListenerRule(
            f"{name}-block-metrics",
            listener_arn=serving.arn,
            priority=METRICS_BLOCK_PRIORITY,
            conditions=[{"path_pattern": {"values": list(METRICS_PATH_PATTERNS)}}],
            actions=[fixed_json(404, METRICS_NOT_FOUND_BODY)],
            opts=child,
        )
        self._admin_rules(name, args, serving, forward)

        if args.hosted_zone_id is not None and args.domain_name is not None:
            aws.route53.Record(
                f"{name}-alias",
                zone_id=args.hosted_zone_id,
                name=args.domain_name,
                type="A",
                aliases=[{"name": self.alb.dns_name, "zone_id": self.alb.zone_id, "evaluate_target_health": True}],
                opts=child,
            )

        self.dns_name = self.alb.dns_name
        self.alb_arn = self.alb.arn
        self.arn_suffix = self.alb.arn_suffix
        self.target_group_arn = target_group.arn
        self.target_group_arn_suffix = target_group.arn_suffix
        self.listener_arn = serving.arn
        self.listeners = [serving]
        self.register_outputs(
            {
                "dns_name": self.dns_name,
                "alb_arn": self.alb_arn,
                "arn_suffix": self.arn_suffix,
                "target_group_arn": self.target_group_arn,
                "target_group_arn_suffix": self.target_group_arn_suffix,
                "listener_arn": self.listener_arn,
            }
        )

    def _certificate_arn(self, name: str, args: LoadBalancerArgs) -> pulumi.Input[str]:
        """The given certificate, or a new ACM certificate for ``domain_name`` validated by a DNS
        record in ``hosted_zone_id``; the listener waits for the validation."""
        if args.certificate_arn is not None:
            return args.certificate_arn
        if args.domain_name is None or args.hosted_zone_id is None:
            raise ValueError("HTTPS needs certificate_arn, or domain_name and hosted_zone_id")
        child = pulumi.ResourceOptions(parent=self)
        certificate = aws.acm.Certificate(
            f"{name}-certificate",
            domain_name=args.domain_name,
            validation_method="DNS",
            opts=child,
        )
        option = certificate.domain_validation_options[0]  # one name, one validation record
        record = aws.route53.Record(
            f"{name}-certificate-validation",
            zone_id=args.hosted_zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=300,
            allow_overwrite=True,
            opts=child,
        )
        validation = aws.acm.CertificateValidation(
            f"{name}-certificate",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=child,
        )
        return validation.certificate_arn

    def _http_refuses_api_calls(self, name: str) -> None:
        """Port 80 next to HTTPS: 403 envelope by default, redirect only for GET/HEAD of the dashboard."""
        child = pulumi.ResourceOptions(parent=self)
        http = aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=self.alb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[fixed_json(403, USE_HTTPS_BODY)],
            opts=child,
        )
        aws.lb.ListenerRule(
            f"{name}-http-dashboard-redirect",
            listener_arn=http.arn,
            priority=HTTP_REDIRECT_PRIORITY,
            conditions=[
                {"http_request_method": {"values": ["GET", "HEAD"]}},
                {"path_pattern": {"values": list(REDIRECT_PATH_PATTERNS)}},
            ],
            actions=[
                {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}}
            ],
            opts=child,
        )

    def _admin_rules(
        self, name: str, args: LoadBalancerArgs, serving: aws.lb.Listener, forward: dict[str, Any]
    ) -> None:
        """Admin paths: forwarded (optionally after OIDC login) from the allowed CIDRs, 403 elsewhere."""
        child = pulumi.ResourceOptions(parent=self)
        priority = ADMIN_ALLOW_FIRST_PRIORITY
        for area, patterns in ADMIN_AREAS.items():
            for i, cidrs in enumerate(admin_cidr_chunks(args.admin_allowed_cidrs, len(patterns))):
                aws.lb.ListenerRule(
                    f"{name}-allow-{area}-{i}",
                    listener_arn=serving.arn,
                    priority=priority,
                    conditions=[
                        {"path_pattern": {"values": list(patterns)}},
                        {"source_ip": {"values": cidrs}},
                    ],
                    actions=self._admin_actions(area, args, forward),
                    opts=child,
                )
                priority += 1
        aws.lb.ListenerRule(
            f"{name}-block-encoded-paths",
            listener_arn=serving.arn,
            priority=ENCODED_PATH_BLOCK_PRIORITY,
            conditions=[{"path_pattern": {"values": list(ENCODED_PATH_PATTERNS)}}],
            actions=[fixed_json(403, ENCODED_PATH_BODY)],
            opts=child,
        )
        aws.lb.ListenerRule(
            f"{name}-block-admin",
            listener_arn=serving.arn,
            priority=ADMIN_BLOCK_PRIORITY,
            conditions=[{"path_pattern": {"values": list(ADMIN_PATH_PATTERNS)}}],
            actions=[fixed_json(403, ADMIN_FORBIDDEN_BODY)],
            opts=child,
        )

    @staticmethod
    def _admin_actions(area: str, args: LoadBalancerArgs, forward: dict[str, Any]) -> list[dict[str, Any]]:
        """Forward, or ``authenticate-oidc`` then forward. The dashboard sends an unauthenticated
        browser to the IdP; the JSON admin API answers 401 instead (a script cannot log in)."""
        oidc = args.admin_oidc
        if oidc is None:
            return [forward]
        return [
            {
                "type": "authenticate-oidc",
                "order": 1,
                "authenticate_oidc": {
                    "issuer": oidc.issuer,
                    "authorization_endpoint": oidc.authorization_endpoint,
                    "token_endpoint": oidc.token_endpoint,
                    "user_info_endpoint": oidc.user_info_endpoint,
                    "client_id": oidc.client_id,
                    "client_secret": args.oidc_client_secret,
                    "scope": oidc.scope,
                    "session_timeout": oidc.session_timeout_s,
                    "on_unauthenticated_request": "authenticate" if area == "ui" else "deny",
                },
            },
            {**forward, "order": 2},
        ]
