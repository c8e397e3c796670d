"""Test constants shared by the fixtures and tests: secrets, client credentials, model ids.

None of these is a real credential. Tests that need a second, distinct value define it locally.
"""

from __future__ import annotations

ADMIN_PASSWORD = "test-admin-password-123"
SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"
CLIENT_API_KEY = "sk-ant-api03-client-credential-for-tests"  # the developer's own Anthropic key
MODEL = "claude-sonnet-4-6"  # a model with a Bedrock mapping in app/bedrock/models.py

# Fake AWS credentials for the whole run, so botocore never looks for real ones (no IMDS calls).
AWS_TEST_ENV = {"AWS_ACCESS_KEY_ID": "AKIATESTTESTTESTTEST", "AWS_SECRET_ACCESS_KEY": "test-secret-access-key",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
# Where Bedrock calls go when a test does not start a fake Bedrock: a closed loopback port.
NO_BEDROCK_URL = "http://127.0.0.1:9"
# argon2id at its cheapest, for proxies started by tests (each start hashes the admin password and
# each admin login verifies it: ~0.3 s apiece with the default 64 MiB / 3 passes). Still argon2id.
CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
DATED_MODEL = "claude-sonnet-4-5-20250929"  # a dated model name (snapshots and prices are by dated name)
BEDROCK_MODEL_ID = "us.anthropic.claude-sonnet-4-20250514-v1:0"  # a Bedrock inference profile id, as on the wire
BEDROCK_FOUNDATION_MODEL_ID = "anthropic.claude-sonnet-4-5-20250929-v1:0"  # a foundation model id, as in IAM ARNs
