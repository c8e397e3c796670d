"""DocumentDB policy over a mocked run."""

from __future__ import annotations

import json

from tests.infra.harness import BASE_CONFIG, ProgramRun, is_secret_input, strings_in, unwrap

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


def test_logs_exported_backups_kept_and_instances_sized(run) -> None:
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


def test_deletion_protection_and_final_snapshot_follow_config(run, http_stack: ProgramRun) -> None:
    protected = http_stack.one(CLUSTER).inputs
    assert protected["deletionProtection"] is True
    assert protected["skipFinalSnapshot"] is False
    assert protected["finalSnapshotIdentifier"].startswith("claude-code-proxy-test-final-")
    loose = run({**BASE_CONFIG, "deletionProtection": False, "finalSnapshot": False}).one(CLUSTER).inputs
    assert loose["deletionProtection"] is False
    assert loose["skipFinalSnapshot"] is True
    assert "finalSnapshotIdentifier" not in loose


def test_app_user_secret_holds_its_own_credentials(http_stack: ProgramRun) -> None:
    secret = http_stack.named("database-app", "aws:secretsmanager/secret:Secret")
    version = http_stack.named("database-app", "aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretId"] == secret.id
    assert is_secret_input(version.inputs["secretString"])
    stored = json.loads(unwrap(version.inputs["secretString"]))
    app_password = next(s for s in http_stack.generated_secrets if "app-password" in s)
    master_password = next(s for s in http_stack.generated_secrets if "master-password" in s)
    assert stored["username"] == "proxyapp" != "proxymaster"
    assert stored["password"] == app_password != master_password
    assert stored["host"].endswith(".docdb.amazonaws.com") and stored["port"] == 27017 and stored["engine"] == "mongo"
    assert secret.inputs["kmsKeyId"] == http_stack.one(CLUSTER).inputs["kmsKeyId"]
    # one secret per password: no URL secret that a rotation would leave stale
    names = {r.name for r in http_stack.of_type("aws:secretsmanager/secret:Secret")}
    assert not any("url" in n for n in names)
    assert not any(master_password in v for r in http_stack.resources if r.name != "database-master"
                   and r.typ == "aws:secretsmanager/secretVersion:SecretVersion"
                   for v in strings_in(r.inputs))


def test_cluster_keys_and_secrets_are_protected_and_snapshot_on_delete(http_stack: ProgramRun, run) -> None:
    protected = {r.typ for r in http_stack.resources if r.protect}
    assert protected == {"aws:docdb/cluster:Cluster", "aws:kms/key:Key", "aws:secretsmanager/secret:Secret"}
    assert all(r.protect for r in http_stack.of_type("aws:secretsmanager/secret:Secret"))
    assert len([r for r in http_stack.of_type("aws:kms/key:Key") if r.protect]) == 2
    cluster = http_stack.one(CLUSTER).inputs
    assert cluster["skipFinalSnapshot"] is False
    assert cluster["finalSnapshotIdentifier"] == "claude-code-proxy-test-final-a1b2c3d4"
    loose = run({**BASE_CONFIG, "deletionProtection": False, "finalSnapshot": False})
    assert not any(r.protect for r in loose.resources)
    assert loose.one(CLUSTER).inputs["skipFinalSnapshot"] is True


def test_engine_is_documentdb_5_or_later(http_stack: ProgramRun) -> None:
    params = http_stack.one("aws:docdb/clusterParameterGroup:ClusterParameterGroup").inputs
    assert http_stack.one(CLUSTER).inputs["engineVersion"] == "5.0.0" and params["family"] == "docdb5.0"


def test_master_password_is_generated_and_secret(http_stack: ProgramRun) -> None:
    cluster = http_stack.one(CLUSTER).inputs
    assert is_secret_input(cluster["masterPassword"])
    assert unwrap(cluster["masterPassword"]) in http_stack.generated_secrets
