"""Network policy over a mocked run: tiers, egress, security groups."""

from __future__ import annotations

from tests.infra.harness import BASE_CONFIG, ProgramRun, strings_in

SUBNET = "aws:ec2/subnet:Subnet"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
#: What may sit in a public subnet: the ALB, plus the plumbing that public subnets exist for.
ALLOWED_IN_PUBLIC = {
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
}


def subnet_ids(run: ProgramRun, tier: str) -> set[str]:
    return {s.id for s in run.of_type(SUBNET) if s.inputs["tags"]["Tier"] == tier}


def sg_id(run: ProgramRun, suffix: str) -> str:
    (sg,) = [r for r in run.of_type("aws:ec2/securityGroup:SecurityGroup") if r.name.endswith(suffix)]
    return sg.id


def test_only_the_load_balancer_uses_public_subnets(http_stack: ProgramRun) -> None:
    public = subnet_ids(http_stack, "public")
    users = {r.typ for r in http_stack.resources if public & set(strings_in(r.inputs))}
    assert "aws:lb/loadBalancer:LoadBalancer" in users
    assert users <= ALLOWED_IN_PUBLIC, users - ALLOWED_IN_PUBLIC
    alb = http_stack.one("aws:lb/loadBalancer:LoadBalancer")
    assert set(alb.inputs["subnets"]) == public


def test_tasks_database_and_endpoints_use_private_subnets(run) -> None:
    stack = run({**BASE_CONFIG, "vpcEndpoints": True})
    private = subnet_ids(stack, "private")
    service = stack.one("aws:ecs/service:Service")
    assert set(service.inputs["networkConfiguration"]["subnets"]) == private
    assert service.inputs["networkConfiguration"]["assignPublicIp"] is False
    assert set(stack.one("aws:docdb/subnetGroup:SubnetGroup").inputs["subnetIds"]) == private
    interface = [
        e for e in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if e.inputs["vpcEndpointType"] == "Interface"
    ]
    assert interface and all(set(e.inputs["subnetIds"]) == private for e in interface)


def test_no_subnet_hands_out_public_ips_and_azs_are_distinct(run) -> None:
    stack = run({**BASE_CONFIG, "azCount": 3})
    subnets = stack.of_type(SUBNET)
    assert len(subnets) == 6
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    for tier in ("public", "private"):
        zones = [s.inputs["availabilityZone"] for s in subnets if s.inputs["tags"]["Tier"] == tier]
        assert len(set(zones)) == 3


def test_nat_gateway_count_and_private_default_routes(run) -> None:
    stack = run({**BASE_CONFIG, "azCount": 3, "natGateways": 2})
    nats = stack.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == 2
    assert {n.inputs["subnetId"] for n in nats} <= subnet_ids(stack, "public")
    private_routes = [r for r in stack.of_type("aws:ec2/route:Route") if "natGatewayId" in r.inputs]
    assert len(private_routes) == 3
    assert {r.inputs["natGatewayId"] for r in private_routes} == {n.id for n in nats}


def test_endpoints_instead_of_nat(run) -> None:
    stack = run({**BASE_CONFIG, "natGateways": 0, "vpcEndpoints": True})
    assert stack.of_type("aws:ec2/natGateway:NatGateway") == []
    assert not any("natGatewayId" in r.inputs for r in stack.of_type("aws:ec2/route:Route"))
    services = {e.inputs["serviceName"] for e in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    expected = {"bedrock-runtime", "secretsmanager", "kms", "logs", "ecr.api", "ecr.dkr", "s3"}
    assert services == {f"com.amazonaws.us-east-1.{s}" for s in expected}
    interface = [
        e for e in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if e.inputs["vpcEndpointType"] == "Interface"
    ]
    assert all(e.inputs["privateDnsEnabled"] is True for e in interface)
    assert NO_NAT_WARNING_FRAGMENT in " ".join(stack.outputs["warnings"])


NO_NAT_WARNING_FRAGMENT = "cannot reach api.anthropic.com"


def test_s3_gateway_endpoint_serves_the_private_route_tables(http_stack: ProgramRun) -> None:
    (s3,) = [
        e for e in http_stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if e.inputs["serviceName"].endswith(".s3")
    ]
    private_rts = {r.id for r in http_stack.of_type("aws:ec2/routeTable:RouteTable") if "private" in r.name}
    assert s3.inputs["vpcEndpointType"] == "Gateway" and set(s3.inputs["routeTableIds"]) == private_rts


def test_internet_reaches_only_the_load_balancer(https_stack: ProgramRun) -> None:
    alb_sg, service_sg = sg_id(https_stack, "alb-sg"), sg_id(https_stack, "service-sg")
    open_rules = [r for r in https_stack.of_type(INGRESS) if r.inputs.get("cidrIpv4") == "0.0.0.0/0"]
    assert {r.inputs["securityGroupId"] for r in open_rules} == {alb_sg}
    assert sorted(r.inputs["fromPort"] for r in open_rules) == [80, 443]
    to_service = [r for r in https_stack.of_type(INGRESS) if r.inputs["securityGroupId"] == service_sg]
    assert [(r.inputs["referencedSecurityGroupId"], r.inputs["fromPort"]) for r in to_service] == [(alb_sg, 8080)]


def test_plain_http_stack_opens_only_port_80(http_stack: ProgramRun) -> None:
    open_rules = [r for r in http_stack.of_type(INGRESS) if r.inputs.get("cidrIpv4") == "0.0.0.0/0"]
    assert [r.inputs["fromPort"] for r in open_rules] == [80]


def test_default_security_group_is_emptied(http_stack: ProgramRun) -> None:
    default = http_stack.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not default.inputs.get("ingress") and not default.inputs.get("egress")


def test_bedrock_runtime_endpoint_alone_keeps_the_fallback_off_the_nat(run) -> None:
    stack = run({**BASE_CONFIG, "bedrockRuntimeEndpoint": "true"})
    interface = [r.inputs for r in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if r.inputs["vpcEndpointType"] == "Interface"]
    assert [e["serviceName"] for e in interface] == ["com.amazonaws.us-east-1.bedrock-runtime"]
    assert interface[0]["privateDnsEnabled"] is True
    assert len(interface[0]["subnetIds"]) == 2  # one ENI per AZ


def test_nat_gateways_single_or_per_az(run) -> None:
    single = run({**BASE_CONFIG, "azCount": 3, "natGateways": "single"})
    per_az = run({**BASE_CONFIG, "azCount": 3, "natGateways": "perAz"})
    assert len(single.of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len(per_az.of_type("aws:ec2/natGateway:NatGateway")) == 3
    routes = [r.inputs["natGatewayId"] for r in per_az.of_type("aws:ec2/route:Route") if "natGatewayId" in r.inputs]
    assert len(set(routes)) == 3  # each private subnet's egress stays in its own AZ


def test_alb_reaches_out_only_to_the_tasks_without_oidc(http_stack: ProgramRun) -> None:
    egress = [r.name for r in http_stack.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
              if r.inputs["securityGroupId"] == http_stack.named("network-alb-sg").id]
    assert egress == ["network-alb-to-service"]
