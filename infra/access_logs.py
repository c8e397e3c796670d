"""ALB access logs: a private S3 bucket (SSE-S3, public access blocked, ACLs disabled, TLS-only,
objects expire after ``albAccessLogsRetentionDays``) that the region's ELB log delivery may write to.

SSE-S3, not SSE-KMS: ALB access logs support only S3-managed keys, not a customer managed KMS key
(docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html).
**Path-form keys (``/ak/<key>/v1/messages``) land in these logs** (the request line is logged):
recommend the header form (``x-proxy-key``), see docs/deploy.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

#: Elastic Load Balancing's log-delivery account per region, for regions opened before August 2022.
#: Newer regions use the ``logdelivery.elasticloadbalancing.amazonaws.com`` service principal instead.
#: Source: docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html
ELB_LOG_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-southeast-3": "589379963580",
    "ap-south-1": "718504428378",
    "ap-northeast-3": "383597477331",
    "ap-northeast-2": "600734575887",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-south-1": "635631232127",
    "eu-west-3": "009996457667",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
    "us-gov-west-1": "048591011584",
    "us-gov-east-1": "190560391635",
}
ELB_LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"
ACCESS_LOG_PREFIX = "alb"


def log_delivery_principal(region: str, partition: str) -> dict[str, str]:
    """The principal that writes ALB access logs in ``region`` (account for old regions, else service)."""
    account = ELB_LOG_ACCOUNTS.get(region)
    if account is not None:
        return {"AWS": f"arn:{partition}:iam::{account}:root"}
    return {"Service": ELB_LOG_DELIVERY_SERVICE}


def access_logs_bucket_policy(bucket_arn: str, region: str, partition: str, account_id: str) -> dict[str, Any]:
    """Let the region's ELB log delivery put objects under ``alb/AWSLogs/<account>/`` only, and refuse
    any request without TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AlbLogDelivery",
                "Effect": "Allow",
                "Principal": log_delivery_principal(region, partition),
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/{ACCESS_LOG_PREFIX}/AWSLogs/{account_id}/*",
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


@dataclass(frozen=True)
class AccessLogsArgs:
    """``retention_days``: objects expire after this many days. ``force_destroy``: let ``pulumi
    destroy`` delete a bucket that still holds logs (off while deletion protection is on)."""

    name_prefix: str
    region: str
    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]
    retention_days: int
    force_destroy: bool


class AccessLogs(pulumi.ComponentResource):
    """Outputs: bucket (its name, resolved only once the bucket policy exists, so an ALB given this
    name is created after ELB may write there), prefix."""

    def __init__(self, name: str, args: AccessLogsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:edge:AccessLogs", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket_prefix=f"{args.name_prefix[:28]}-alb-logs-",
            force_destroy=args.force_destroy,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-sse",
            bucket=bucket.id,
            # SSE-S3: ALB access log delivery does not support SSE-KMS (no customer managed key here).
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-expiry",
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {"prefix": f"{ACCESS_LOG_PREFIX}/"},
                    "expiration": {"days": args.retention_days},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                }
            ],
            opts=child,
        )
        policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, args.partition, args.account_id).apply(
                lambda v: json.dumps(access_logs_bucket_policy(v[0], args.region, v[1], v[2]))
            ),
            opts=child,
        )
        self.bucket = pulumi.Output.all(bucket.bucket, policy.id).apply(lambda v: v[0])
        self.prefix = ACCESS_LOG_PREFIX
        self.register_outputs({"bucket": self.bucket})
