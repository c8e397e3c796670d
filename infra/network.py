"""Network: VPC, public subnets (load balancer only), private subnets (tasks, database), egress
(NAT gateways and/or VPC endpoints) and the two edge security groups (ALB, service).

The database's security group lives in ``database.py``: it admits only the service group given here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.addressing import plan_subnets
from infra.container import CONTAINER_PORT

#: Interface endpoints that let tasks in private subnets reach AWS without a NAT gateway.
INTERFACE_ENDPOINT_SERVICES = ("bedrock-runtime", "secretsmanager", "kms", "logs", "ecr.api", "ecr.dkr")
ANYWHERE_V4 = "0.0.0.0/0"


@dataclass(frozen=True)
class NetworkArgs:
    """``nat_gateways`` is 0..az_count (tasks in AZ i use gateway i % n; az_count = one per AZ, so an
    AZ outage takes no other AZ's egress with it); ``https`` opens 443 on the ALB.
    ``vpc_endpoints``: every interface endpoint in ``INTERFACE_ENDPOINT_SERVICES``;
    ``bedrock_runtime_endpoint``: only ``bedrock-runtime`` (with private DNS), so the Bedrock fallback
    does not depend on the NAT gateways that the Anthropic path uses."""

    vpc_cidr: str
    az_count: int
    nat_gateways: int
    vpc_endpoints: bool
    https: bool
    region: str
    bedrock_runtime_endpoint: bool = False
    alb_egress_https: bool = False  # ALB -> identity provider on 443 (authenticate-oidc token calls)


class Network(pulumi.ComponentResource):
    """VPC across ``az_count`` AZs. Outputs: vpc_id, public/private subnet ids, public_subnet_cidrs
    (plain strings, for uvicorn's trusted proxies), alb_security_group_id, service_security_group_id."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plan = plan_subnets(args.vpc_cidr, args.az_count)
        self.public_subnet_cidrs: tuple[str, ...] = plan.public

        zones = aws.get_availability_zones_output(
            state="available",
            filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
            opts=pulumi.InvokeOutputOptions(parent=self),
        )

        def zone(index: int) -> pulumi.Output[str]:
            def pick(names: list[str]) -> str:
                if len(names) <= index:
                    raise ValueError(f"azCount={args.az_count} but {args.region} offers only {len(names)} AZs")
                return names[index]

            return zones.names.apply(pick)

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_support=True,  # interface endpoints' private DNS needs both
            enable_dns_hostnames=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        # Strip the default security group's allow-all rules so nothing can use it by accident.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, tags={"Name": f"{name}-default-closed"}, opts=child
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": f"{name}-igw"}, opts=child)

        public_rt = aws.ec2.RouteTable(f"{name}-public-rt", vpc_id=vpc.id, tags={"Name": f"{name}-public"}, opts=child)
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block=ANYWHERE_V4,
            gateway_id=igw.id,
            opts=child,
        )

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        private_rts: list[aws.ec2.RouteTable] = []
        for i in range(args.az_count):
            public = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=vpc.id,
                cidr_block=plan.public[i],
                availability_zone=zone(i),
                map_public_ip_on_launch=False,  # the ALB gets its own addresses; nothing else lives here
                tags={"Name": f"{name}-public-{i}", "Tier": "public"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}", subnet_id=public.id, route_table_id=public_rt.id, opts=child
            )
            public_subnets.append(public)

            private = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                cidr_block=plan.private[i],
                availability_zone=zone(i),
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-private-{i}", "Tier": "private"},
                opts=child,
            )
            rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{i}", vpc_id=vpc.id, tags={"Name": f"{name}-private-{i}"}, opts=child
            )
            aws.ec2.RouteTableAssociation(f"{name}-private-{i}", subnet_id=private.id, route_table_id=rt.id, opts=child)
            private_subnets.append(private)
            private_rts.append(rt)

        nat_gateways = []
        for i in range(args.nat_gateways):
            eip = aws.ec2.Eip(f"{name}-nat-{i}", domain="vpc", tags={"Name": f"{name}-nat-{i}"}, opts=child)
            nat_gateways.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{i}",
                    allocation_id=eip.id,
                    subnet_id=public_subnets[i].id,
                    tags={"Name": f"{name}-nat-{i}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
            )
        for i, rt in enumerate(private_rts):
            if nat_gateways:
                aws.ec2.Route(
                    f"{name}-private-default-{i}",
                    route_table_id=rt.id,
                    destination_cidr_block=ANYWHERE_V4,
                    nat_gateway_id=nat_gateways[i % len(nat_gateways)].id,
                    opts=child,
                )

        # S3 gateway endpoint: free, and ECR image layers come from S3, so it saves NAT traffic.
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_rts],
            tags={"Name": f"{name}-s3"},
            opts=child,
        )
        if args.vpc_endpoints:
            endpoint_services: tuple[str, ...] = INTERFACE_ENDPOINT_SERVICES
        elif args.bedrock_runtime_endpoint:
            endpoint_services = ("bedrock-runtime",)
        else:
            endpoint_services = ()
        if endpoint_services:
            endpoint_sg = aws.ec2.SecurityGroup(
                f"{name}-endpoints-sg",
                vpc_id=vpc.id,
                description="HTTPS from inside the VPC to interface endpoints",
                tags={"Name": f"{name}-endpoints"},
                opts=child,
            )
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-endpoints-https",
                security_group_id=endpoint_sg.id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                cidr_ipv4=args.vpc_cidr,
                description="HTTPS from the VPC",
                opts=child,
            )
            for service in endpoint_services:
                aws.ec2.VpcEndpoint(
                    f"{name}-{service.replace('.', '-')}",
                    vpc_id=vpc.id,
                    service_name=f"com.amazonaws.{args.region}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[s.id for s in private_subnets],
                    security_group_ids=[endpoint_sg.id],
                    tags={"Name": f"{name}-{service}"},
                    opts=child,
                )

        alb_sg = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            vpc_id=vpc.id,
            description="Internet to the load balancer",
            tags={"Name": f"{name}-alb"},
            opts=child,
        )
        service_sg = aws.ec2.SecurityGroup(
            f"{name}-service-sg",
            vpc_id=vpc.id,
            description="Load balancer to the proxy tasks",
            tags={"Name": f"{name}-service"},
            opts=child,
        )
        listener_ports = (80, 443) if args.https else (80,)
        for port in listener_ports:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-alb-in-{port}",
                security_group_id=alb_sg.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4=ANYWHERE_V4,
                description=f"clients on {port}",
                opts=child,
            )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-alb-to-service",
            security_group_id=alb_sg.id,
            ip_protocol="tcp",
            from_port=CONTAINER_PORT,
            to_port=CONTAINER_PORT,
            referenced_security_group_id=service_sg.id,
            description="forward to the proxy tasks",
            opts=child,
        )
        if args.alb_egress_https:
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-alb-to-idp",
                security_group_id=alb_sg.id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                cidr_ipv4=ANYWHERE_V4,
                description="OIDC token and user-info endpoints of the identity provider",
                opts=child,
            )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-service-from-alb",
            security_group_id=service_sg.id,
            ip_protocol="tcp",
            from_port=CONTAINER_PORT,
            to_port=CONTAINER_PORT,
            referenced_security_group_id=alb_sg.id,
            description="only the load balancer",
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-service-https-out",
            security_group_id=service_sg.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=ANYWHERE_V4,
            description="Anthropic API, Bedrock and AWS APIs over HTTPS",
            opts=child,
        )

        self.vpc_id = vpc.id
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.alb_security_group_id = alb_sg.id
        self.service_security_group_id = service_sg.id
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "public_subnet_cidrs": list(self.public_subnet_cidrs),
                "alb_security_group_id": self.alb_security_group_id,
                "service_security_group_id": self.service_security_group_id,
            }
        )
