"""Load balancer: internet-facing ALB in the public subnets, one IP target group for the tasks.

- HTTPS on 443 with the ACM certificate and HTTP 80 -> 301 to HTTPS when a certificate is configured;
  plain HTTP on 80 otherwise (the stack then exports a warning).
- Idle timeout above Claude Code's 600 s client timeout, so long streamed turns are not cut.
- Invalid header fields dropped (request smuggling), desync mitigation "defensive".
- ``/metrics*`` answered by the ALB itself with a fixed 404: Prometheus scrapes from inside the VPC only.
- Target health check on ``/health`` (liveness, no store), least-outstanding-requests routing (streams
  are long and uneven), deregistration delay to let open streams finish on deploys and scale-in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.container import CONTAINER_PORT

#: TLS 1.2/1.3 only (docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html).
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
METRICS_PATH_PATTERNS = ("/metrics*",)  # "/metrics", "/metrics/", "/metrics/..." and any suffix
METRICS_BLOCK_PRIORITY = 1


@dataclass(frozen=True)
class LoadBalancerArgs:
    """Times in seconds. ``certificate_arn`` None -> HTTP only. ``hosted_zone_id`` + ``domain_name`` ->
    a Route 53 alias record for the ALB."""

    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_id: pulumi.Input[str]
    idle_timeout_s: int
    deregistration_delay_s: int
    deletion_protection: bool
    certificate_arn: str | None
    domain_name: str | None
    hosted_zone_id: str | None
    # --- access logs (edge.AccessLogs): bucket name, None = off ---
    access_logs_bucket: pulumi.Input[str] | None = None
    access_logs_prefix: str = "alb"


class LoadBalancer(pulumi.ComponentResource):
    """ALB, target group and listeners. Outputs: dns_name, arn_suffix, target_group_arn,
    target_group_arn_suffix, listener_arn (the one that forwards to the tasks)."""

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:edge:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        alb = aws.lb.LoadBalancer(
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
        forward = [{"type": "forward", "target_group_arn": target_group.arn}]

        if args.certificate_arn is not None:
            serving = aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=alb.arn,
                port=443,
                protocol="HTTPS",
                ssl_policy=SSL_POLICY,
                certificate_arn=args.certificate_arn,
                default_actions=forward,
                opts=child,
            )
            aws.lb.Listener(
                f"{name}-http-redirect",
                load_balancer_arn=alb.arn,
                port=80,
                protocol="HTTP",
                default_actions=[
                    {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}}
                ],
                opts=child,
            )
        else:
            serving = aws.lb.Listener(
                f"{name}-http", load_balancer_arn=alb.arn, port=80, protocol="HTTP", default_actions=forward, opts=child
            )

        aws.lb.ListenerRule(
            f"{name}-block-metrics",
            listener_arn=serving.arn,
            priority=METRICS_BLOCK_PRIORITY,
            conditions=[{"path_pattern": {"values": list(METRICS_PATH_PATTERNS)}}],
            actions=[
                {
                    "type": "fixed-response",
                    "fixed_response": {"content_type": "text/plain", "message_body": "Not Found", "status_code": "404"},
                }
            ],
            opts=child,
        )

        if args.hosted_zone_id is not None and args.domain_name is not None:
            aws.route53.Record(
                f"{name}-alias",
                zone_id=args.hosted_zone_id,
                name=args.domain_name,
                type="A",
                aliases=[{"name": alb.dns_name, "zone_id": alb.zone_id, "evaluate_target_health": True}],
                opts=child,
            )

        self.dns_name = alb.dns_name
        self.arn = alb.arn
        self.arn_suffix = alb.arn_suffix
        self.target_group_arn = target_group.arn
        self.target_group_arn_suffix = target_group.arn_suffix
        self.listener_arn = serving.arn
        self.listeners = [serving]
        self.register_outputs(
            {
                "dns_name": self.dns_name,
                "arn_suffix": self.arn_suffix,
                "target_group_arn": self.target_group_arn,
                "target_group_arn_suffix": self.target_group_arn_suffix,
                "listener_arn": self.listener_arn,
            }
        )
