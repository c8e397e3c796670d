"""Run the whole Pulumi program under ``pulumi.runtime.Mocks`` and record what it would create.

Each :func:`run_program` call installs fresh mocks and config, runs ``infra/__main__.py`` (the
real entry point, via ``runpy``) and returns every registered resource (type token, name, inputs
as the engine sees them: camelCase keys) plus the resolved stack outputs and which were secret.
Mock secret values are distinctive strings so tests can prove they never reach an output.
"""

from __future__ import annotations

import asyncio
import json
import runpy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import get_root_resource

PROJECT = "claude-code-proxy"
STACK = "test"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
MAIN = Path(__file__).resolve().parents[2] / "infra" / "__main__.py"

#: Values of every generated or configured secret in a mocked run; none may appear in an output.
MOCK_PASSWORD_PREFIX = "MOCKSECRET"
CONFIG_ADMIN_PASSWORD = "config-admin-password-Zq8"
CONFIG_METRICS_TOKEN = "config-metrics-token-Vw3"
ECR_TOKEN_PASSWORD = "ecr-token-password-Ux7"

OIDC_CLIENT_SECRET = "oidc-client-secret-Kp4"
OIDC_SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:proxy-oidc-client-AbCdEf"

#: A minimal valid config (the explicit plain-HTTP opt-out; HTTPS is required otherwise); tests add
#: or override keys.
BASE_CONFIG: dict[str, Any] = {"aws:region": REGION, "allowInsecureHttp": "true"}
HTTPS_CONFIG: dict[str, Any] = {
    "aws:region": REGION,
    "domainName": "proxy.example.com",
    "certificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT_ID}:certificate/0f5b5a29-1111-2222-3333-444455556666",
    "image": f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/claude-code-proxy@sha256:{'c' * 64}",
    "adminAllowedCidrs": ["203.0.113.0/24"],
    "adminPassword": CONFIG_ADMIN_PASSWORD,
    "metricsToken": CONFIG_METRICS_TOKEN,
    "alarmEmail": "ops@example.com",
}
SECRET_CONFIG_KEYS = ("adminPassword", "metricsToken", "oidcClientSecret")
SSO_CLIENT_SECRET = "sso-client-secret-Hq2"  # oidcClientSecret (the app's own single sign-on)


@dataclass(frozen=True)
class Recorded:
    """One resource the program registered: Pulumi type token, logical name, engine-side inputs,
    and the type token of its parent (``pulumi:pulumi:Stack`` for top-level resources)."""

    typ: str
    name: str
    inputs: dict[str, Any]
    parent_type: str
    protect: bool = False

    @property
    def id(self) -> str:
        """The physical id the mocks gave it."""
        return f"{self.name}-id"


@dataclass
class ProgramRun:
    """Everything one mocked run produced."""

    resources: list[Recorded]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    generated_secrets: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what pulumi.log.warn said

    def of_type(self, typ: str) -> list[Recorded]:
        """Resources with the given type token (e.g. ``aws:ec2/subnet:Subnet``)."""
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> Recorded:
        """The single resource of ``typ``; fails if there are zero or several."""
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str, typ: str | None = None) -> Recorded:
        """The resource with logical name ``name`` (and type token ``typ``, when names are shared)."""
        found = [r for r in self.resources if r.name == name and typ in (None, r.typ)]
        assert len(found) == 1, f"expected one resource named {name} ({typ}), found {len(found)}"
        return found[0]

    def by_id(self, physical_id: str) -> Recorded:
        """The resource whose mock id is ``physical_id``."""
        found = [r for r in self.resources if r.id == physical_id and r.typ.split(":")[0] != "claude-proxy"]
        assert len(found) == 1, f"expected one resource with id {physical_id}, found {len(found)}"
        return found[0]

    def secret_values(self) -> list[str]:
        """Every secret value the run could have leaked: generated passwords and configured secrets."""
        return [
            *self.generated_secrets,
            CONFIG_ADMIN_PASSWORD,
            CONFIG_METRICS_TOKEN,
            ECR_TOKEN_PASSWORD,
            OIDC_CLIENT_SECRET,
            SSO_CLIENT_SECRET,
        ]

    def containers(self) -> dict[str, dict[str, Any]]:
        """Every container definition of the task (db-init, proxy, sidecars), by container name."""
        definitions = json.loads(self.one("aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"])
        return {d["name"]: d for d in definitions}

    def task_container(self) -> dict[str, Any]:
        """The proxy's container definition, parsed from the task definition's JSON."""
        return self.containers()["proxy"]

    def init_container(self) -> dict[str, Any]:
        """The db-init container's definition."""
        return self.containers()["db-init"]


#: How the engine marks a secret input: {SECRET_SIG: SECRET_MARKER, "value": ...}.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_MARKER = "1b47061264138c4ac30d75fd1eb44270"


def is_secret_input(value: Any) -> bool:
    """True if ``value`` is an input the engine received marked as secret."""
    return isinstance(value, Mapping) and value.get(SECRET_SIG) == SECRET_MARKER


def unwrap(value: Any) -> Any:
    """The plain value of a (possibly secret-marked) input."""
    return value["value"] if is_secret_input(value) else value


def strings_in(value: Any) -> Iterator[str]:
    """Every string anywhere inside a nested dict/list value (keys included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from strings_in(k)
            yield from strings_in(v)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings_in(item)


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers resource registrations with their inputs plus plausible computed outputs, and
    lookups (caller identity, partition, AZs, ECR token) with fixed values."""

    def __init__(self) -> None:
        self.resources: list[Recorded] = []
        self.generated_secrets: list[str] = []
        self.parent_urns: dict[str, str] = {}  # logical name -> parent URN (filled by RecordingMonitor)
        self.protected: dict[str, bool] = {}  # logical name -> the protect option (RecordingMonitor)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        parent_urn = self.parent_urns.get(args.name, "")
        # urn:pulumi:<stack>::<project>::<parent types joined by $>::<name> -> the innermost type
        parent_type = parent_urn.split("::")[2].split("$")[-1] if parent_urn.count("::") >= 3 else ""
        protect = self.protected.get(args.name, False)
        self.resources.append(Recorded(args.typ, args.name, inputs, parent_type, protect))
        physical_id = f"{args.name}-id"
        state = dict(inputs)
        service = args.typ.split(":")[1].split("/")[0]
        state.setdefault(
            "arn", f"arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{args.typ.rsplit(':', 1)[1].lower()}/{args.name}"
        )
        state.setdefault("name", inputs.get("name") or args.name)
        if args.typ == "random:index/randomPassword:RandomPassword":
            secret = f"{MOCK_PASSWORD_PREFIX}-{args.name}-{inputs.get('length')}"
            self.generated_secrets.append(secret)
            state["result"] = secret
        elif args.typ == "random:index/randomId:RandomId":
            state["hex"] = "a1b2c3d4"
        elif args.typ == "aws:lb/loadBalancer:LoadBalancer":
            state.update(
                dnsName=f"{args.name}-123.{REGION}.elb.amazonaws.com",
                zoneId="Z35SXDOTRQ7X7K",
                arnSuffix=f"app/{args.name}/abc123",
            )
        elif args.typ == "aws:lb/targetGroup:TargetGroup":
            state["arnSuffix"] = f"targetgroup/{args.name}/def456"
        elif args.typ == "aws:docdb/cluster:Cluster":
            state.update(
                endpoint=f"{args.name}.cluster-xyz.{REGION}.docdb.amazonaws.com",
                clusterIdentifier=inputs["clusterIdentifier"],
            )
        elif args.typ == "aws:ecr/repository:Repository":
            state.update(
                repositoryUrl=f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/{args.name}", registryId=ACCOUNT_ID
            )
        elif args.typ == "aws:kms/key:Key":
            state["keyId"] = f"{args.name}-key-id"
            state["arn"] = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{args.name}-key-id"
        elif args.typ == "aws:secretsmanager/secret:Secret":
            state["arn"] = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{args.name}-AbCdEf"
        elif args.typ == "aws:s3/bucket:Bucket":
            state.setdefault("bucket", f"{inputs.get('bucketPrefix', args.name)}0123abcd")
            state["arn"] = f"arn:aws:s3:::{state['bucket']}"
        elif args.typ == "aws:acm/certificate:Certificate":
            state["domainValidationOptions"] = [
                {
                    "domainName": inputs["domainName"],
                    "resourceRecordName": f"_x1.{inputs['domainName']}.",
                    "resourceRecordType": "CNAME",
                    "resourceRecordValue": "_y2.acm-validations.aws.",
                }
            ]
        elif args.typ == "aws:acm/certificateValidation:CertificateValidation":
            state["certificateArn"] = inputs["certificateArn"]
        elif args.typ == "aws:route53/record:Record":
            state["fqdn"] = str(inputs.get("name", "")).rstrip(".")
        elif args.typ == "docker-build:index:Image":
            state["ref"] = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/built@sha256:{'0' * 64}"
        return physical_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        # A dict, not (dict, None): this SDK version iterates the failures list when a tuple is returned.
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/test",
                "userId": "AIDTEST",
                "id": ACCOUNT_ID,
            }
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws", "reverseDnsPrefix": "com.amazonaws"}
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{REGION}{z}" for z in "abcdef"]
            return {"names": names, "zoneIds": [f"use1-az{i}" for i in range(1, 7)], "id": REGION}
        if token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            assert args.args["secretId"] == OIDC_SECRET_ARN, args.args
            return {"secretString": OIDC_CLIENT_SECRET, "arn": OIDC_SECRET_ARN, "id": OIDC_SECRET_ARN}
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {"userName": "AWS", "password": ECR_TOKEN_PASSWORD, "proxyEndpoint": "https://ecr", "id": "token"}
        raise AssertionError(f"unexpected lookup {token}; add a mock for it")


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also noting each resource's parent URN (MockResourceArgs lacks it)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:
        self.recording.parent_urns[request.name] = request.parent
        self.recording.protected[request.name] = bool(request.protect)
        return super().RegisterResource(request)


def _config_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def run_program(config: Mapping[str, Any], stack: str = STACK) -> ProgramRun:
    """Run infra/__main__.py under fresh mocks with ``config`` (bare keys get the project prefix;
    ``aws:*`` keys are kept) as stack ``stack``. Returns the recorded resources, resolved outputs and
    the warnings the program logged."""
    mocks = RecordingMocks()
    warnings: list[str] = []
    # Pulumi's mocks need a current event loop in this thread; an earlier asyncio.run() (other
    # test packages) leaves none behind.
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(mocks))
    full = {key if ":" in key else f"{PROJECT}:{key}": _config_value(value) for key, value in config.items()}
    pulumi.runtime.set_all_config(full, secret_keys=[f"{PROJECT}:{k}" for k in SECRET_CONFIG_KEYS if k in config])

    get_root_resource().outputs.clear()  # the root stack outlives a run; drop the previous run's exports
    outputs: dict[str, Any] = {}
    secret_outputs: set[str] = set()

    async def resolve_exports() -> None:
        exported = get_root_resource().outputs  # what pulumi.export() recorded on the root stack
        for key, value in list(exported.items()):
            out = pulumi.Output.from_input(value)
            outputs[key] = await out.future()
            if await out.is_secret():
                secret_outputs.add(key)

    def program() -> pulumi.Output[Any]:
        runpy.run_path(str(MAIN), run_name="__main__")
        return pulumi.Output.from_input(None).apply(lambda _: resolve_exports())

    original_warn = pulumi.log.warn
    pulumi.log.warn = lambda msg, *args, **kwargs: warnings.append(msg)  # type: ignore[assignment]
    try:
        pulumi.runtime.test(program)()
    finally:
        pulumi.log.warn = original_warn  # type: ignore[assignment]
    return ProgramRun(mocks.resources, outputs, secret_outputs, mocks.generated_secrets, warnings)
