"""Pulumi program for claude-code-proxy on AWS (ECS Fargate + ALB + DocumentDB + Bedrock fallback).

Entry point: ``infra/__main__.py`` (``Pulumi.yaml`` has ``main: infra/``). One ComponentResource per
concern lives in its own module; pure helpers (config validation, CIDR maths, policy documents,
container definition, URLs) sit in modules that import no cloud SDK so that they test plainly.
See docs/deploy.md for the operator's guide.
"""
