"""DocumentDB policy over a mocked run."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.infra.harness import BASE_CONFIG, ProgramRun, is_secret_input, unwrap

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
CLUSTER = "aws:docdb/cluster:Cluster"


def db_sg(run: ProgramRun) -> str:
    return run.one(CLUSTER).inputs["vpcSecurityGroupIds"][0]


def service_sg(run: ProgramRun) -> str:
    return run.named("network-service-sg").id


def test_database_accepts_27017_only_from_the_service(http_stack: ProgramRun) -> None:
    sg = db_sg(http_stack)
    assert http_stack.by_id(sg).typ == "aws:ec2/securityGroup:SecurityGroup"
    rules = [r for r in http_stack.of_type(INGRESS) if r.inputs["securityGroupId"] == sg]
    assert len(rules) == 1
    (rule,) = rules
    assert rule.inputs["referencedSecurityGroupId"] == service_sg(http_stack)
    assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (27017, 27017, "tcp")
    assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs
    sg_inputs = http_stack.by_id(sg).inputs
    assert not sg_inputs.get("ingress") and not sg_inputs.get("egress")
    assert not [r for r in http_stack.of_type(EGRESS) if r.inputs["securityGroupId"] == sg]


def test_no_rule_anywhere_opens_the_database_port_to_a_cidr(http_stack: ProgramRun) -> None:
    for rule in [*http_stack.of_type(INGRESS), *http_stack.of_type(EGRESS)]:
        if rule.inputs.get("fromPort", 0) <= 27017 <= rule.inputs.get("toPort", -1):
            assert "cidrIpv4" not in rule.inputs, rule.name


def test_storage_encrypted_with_the_stacks_data_key(http_stack: ProgramRun) -> None:
    cluster = http_stack.one(CLUSTER).inputs
    data_key = http_stack.named("keys-data", "aws:kms/key:Key")
    assert cluster["storageEncrypted"] is True
    assert cluster["kmsKeyId"] == f"arn:aws:kms:us-east-1:123456789012:key/{data_key.name}-key-id"


def test_tls_enforced_by_the_clusters_parameter_group(http_stack: ProgramRun) -> None:
    group = http_stack.one("aws:docdb/clusterParameterGroup:ClusterParameterGroup")
    params = {p["name"]: p["value"] for p in group.inputs["parameters"]}
    assert params["tls"] == "enabled"
    assert params["audit_logs"] == "enabled" and params["profiler"] == "enabled"
    assert group.inputs["family"] == "docdb5.0"
    assert http_stack.one(CLUSTER).inputs["dbClusterParameterGroupName"] == group.name  # the mock names it so


def test_logs_exported_backups_kept_and_instances_sized(run) -> None:  # noqa: ANN001
    stack = run(
        {**BASE_CONFIG, "docdbInstanceCount": 2, "docdbBackupRetentionDays": 14, "docdbInstanceClass": "db.r6g.large"}
    )
    cluster = stack.one(CLUSTER).inputs
    assert sorted(cluster["enabledCloudwatchLogsExports"]) == ["audit", "profiler"]
    assert cluster["backupRetentionPeriod"] == 14
    instances = stack.of_type("aws:docdb/clusterInstance:ClusterInstance")
    assert len(instances) == 2
    assert {i.inputs["instanceClass"] for i in instances} == {"db.r6g.large"}
    log_groups = {g.inputs["name"]: g.inputs for g in stack.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for log in ("audit", "profiler"):
        assert log_groups[f"/aws/docdb/claude-code-proxy-test/{log}"]["retentionInDays"] == 30


def test_deletion_protection_and_final_snapshot_follow_config(run, http_stack: ProgramRun) -> None:  # noqa: ANN001
    protected = http_stack.one(CLUSTER).inputs
    assert protected["deletionProtection"] is True
    assert protected["skipFinalSnapshot"] is False
    assert protected["finalSnapshotIdentifier"].startswith("claude-code-proxy-test-final-")
    loose = run({**BASE_CONFIG, "deletionProtection": False, "finalSnapshot": False}).one(CLUSTER).inputs
    assert loose["deletionProtection"] is False
    assert loose["skipFinalSnapshot"] is True
    assert "finalSnapshotIdentifier" not in loose


def test_app_connection_string_secret(http_stack: ProgramRun) -> None:
    url_secret = http_stack.named("database-mongodb-url", "aws:secretsmanager/secret:Secret")
    version = http_stack.named("database-mongodb-url", "aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretId"] == url_secret.id
    assert is_secret_input(version.inputs["secretString"])
    url = urlsplit(unwrap(version.inputs["secretString"]))
    master_password = next(s for s in http_stack.generated_secrets if "master-password" in s)
    assert url.password == master_password and url.username == "proxymaster"
    assert url.hostname.endswith(".docdb.amazonaws.com")
    query = parse_qs(url.query)
    assert query["tls"] == ["true"] and query["tlsCAFile"] == ["/srv/certs/global-bundle.pem"]
    assert (
        query["replicaSet"] == ["rs0"]
        and query["readPreference"] == ["secondaryPreferred"]
        and query["retryWrites"] == ["false"]
    )
    assert url_secret.inputs["kmsKeyId"] == http_stack.one(CLUSTER).inputs["kmsKeyId"]


def test_master_password_is_generated_and_secret(http_stack: ProgramRun) -> None:
    cluster = http_stack.one(CLUSTER).inputs
    assert is_secret_input(cluster["masterPassword"])
    assert unwrap(cluster["masterPassword"]) in http_stack.generated_secrets
