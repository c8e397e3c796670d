"""ALB access logs: the bucket's protections, the delivery principal per region, the ALB wiring."""

from __future__ import annotations

import json

from infra.access_logs import ELB_LOG_DELIVERY_SERVICE, access_logs_bucket_policy, log_delivery_principal
from tests.infra.harness import BASE_CONFIG, ProgramRun

BUCKET = "aws:s3/bucket:Bucket"


def test_old_regions_grant_the_elb_account_and_new_ones_the_service_principal() -> None:
    assert log_delivery_principal("us-east-1", "aws") == {"AWS": "arn:aws:iam::127311923021:root"}
    assert log_delivery_principal("eu-west-1", "aws") == {"AWS": "arn:aws:iam::156460612806:root"}
    assert log_delivery_principal("ap-southeast-5", "aws") == {"Service": ELB_LOG_DELIVERY_SERVICE}


def test_bucket_policy_allows_only_puts_under_this_accounts_prefix_and_requires_tls() -> None:
    doc = access_logs_bucket_policy("arn:aws:s3:::logs", "us-east-1", "aws", "123456789012")
    allow, deny = doc["Statement"]
    assert (allow["Effect"], allow["Action"]) == ("Allow", "s3:PutObject")
    assert allow["Resource"] == "arn:aws:s3:::logs/alb/AWSLogs/123456789012/*"
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_default_stack_logs_to_a_private_sse_s3_bucket_with_expiry(http_stack: ProgramRun) -> None:
    bucket = http_stack.one(BUCKET)
    assert bucket.inputs["bucketPrefix"].startswith("claude-code-proxy-test-alb-logs-")
    assert bucket.inputs.get("forceDestroy") is False  # deletion protection is on by default
    (sse,) = http_stack.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs["rules"]
    # ALB access logs cannot use SSE-KMS: S3-managed keys are the only option
    assert sse["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    block = http_stack.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    ownership = http_stack.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    (rule,) = http_stack.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert rule["status"] == "Enabled" and rule["expiration"]["days"] == 90
    policy = json.loads(http_stack.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    assert policy["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::127311923021:root"}


def test_the_alb_writes_its_access_logs_to_that_bucket(http_stack: ProgramRun) -> None:
    logs = http_stack.one("aws:lb/loadBalancer:LoadBalancer").inputs["accessLogs"]
    bucket = http_stack.one(BUCKET).inputs["bucketPrefix"] + "0123abcd"  # the name the mocks gave it
    assert logs == {"bucket": bucket, "prefix": "alb", "enabled": True}
    policy = json.loads(http_stack.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    assert policy["Statement"][0]["Resource"] == f"arn:aws:s3:::{bucket}/alb/AWSLogs/123456789012/*"


def test_access_logs_follow_config(run) -> None:
    off = run({**BASE_CONFIG, "albAccessLogs": "false"})
    assert off.of_type(BUCKET) == []
    assert "accessLogs" not in off.one("aws:lb/loadBalancer:LoadBalancer").inputs
    kept = run({**BASE_CONFIG, "albAccessLogsRetentionDays": 30, "deletionProtection": "false"})
    (rule,) = kept.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert rule["expiration"]["days"] == 30
    assert kept.one(BUCKET).inputs["forceDestroy"] is True
