"""Container image: the ECR repository (scan on push, immutable tags) and the image, either built
from the repository's Dockerfile with pulumi-docker-build (BuildKit) and pushed there, or a prebuilt
image from the ``image`` config (what CI/CD pipelines deploy: ``<repo>@sha256:<digest>``).

A build is reproducible from any checkout:

- the context and Dockerfile are given to the builder relative to the working directory (the
  project root, where ``pulumi`` runs), so no absolute path of one machine lands in the state and a
  colleague's or CI's checkout sees no diff;
- the tag is a digest of exactly what the builder sends as context (``context_files``: every file
  Docker's own ``.dockerignore`` matcher keeps, via docker-py, plus the Dockerfile), the build args
  and the platform. Same context -> same tag, and the builder only rebuilds when the context
  changes -> new tag, so a push never meets an existing tag in the IMMUTABLE repository.

The task definition uses the pushed image's ``ref`` (``<tag>@sha256:...``), so a deploy always runs
the exact bytes that were built.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

#: Repository root (the Docker build context): infra/ sits directly under it.
REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = "Dockerfile"
#: Default build platform; the stack passes the one matching ``cpuArchitecture`` (Graviton: arm64).
PLATFORM = "linux/arm64"
KEEP_IMAGES = 30
TAG_HEX_DIGITS = 24


def dockerignore_patterns(root: Path) -> list[str]:
    """The patterns of ``root/.dockerignore`` (blank lines and comments dropped); [] without one."""
    path = root / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_files(root: Path, dockerfile: str = DOCKERFILE) -> list[str]:
    """Relative POSIX paths of the files Docker sends as build context from ``root``: what
    ``.dockerignore`` keeps (docker-py's implementation of Docker's matcher, ``!`` exceptions
    included) plus the Dockerfile and ``.dockerignore`` themselves. Sorted."""
    from docker.utils.build import exclude_paths  # docker-py: a dependency of pulumi-docker-build

    kept = exclude_paths(str(root), dockerignore_patterns(root), dockerfile=dockerfile)
    return sorted(Path(p).as_posix() for p in kept if (root / p).is_file())


def source_tag(root: Path, build_args: Mapping[str, str] | None = None, platform: str = PLATFORM) -> str:
    """A content-addressed tag: hex digest (``TAG_HEX_DIGITS``) of the path and bytes of every
    context file, the build args and the platform. Independent of where the checkout lives."""
    digest = hashlib.sha256()
    for name in context_files(root):
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256((root / name).read_bytes()).digest())
    for key, value in sorted((build_args or {}).items()):
        digest.update(f"--build-arg {key}={value}\0".encode())
    digest.update(f"--platform {platform}".encode())
    return digest.hexdigest()[:TAG_HEX_DIGITS]


def relative_to_cwd(path: Path) -> str:
    """``path`` relative to the working directory (``.`` for the project root) as Pulumi sees it."""
    return Path(os.path.relpath(path, Path.cwd())).as_posix()


@dataclass(frozen=True)
class ContainerImageArgs:
    """``image`` set: use that URI and build nothing. Unset: build ``context`` for ``platform`` and push."""

    image: str | None
    force_delete: bool
    build_args: Mapping[str, str] = field(default_factory=dict)
    context: Path = REPO_ROOT
    platform: str = PLATFORM  # linux/arm64 | linux/amd64, matching the task's runtimePlatform


class ContainerImage(pulumi.ComponentResource):
    """Outputs: repository_url, repository_arn, image_ref (what the task definition runs)."""

    def __init__(self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:compute:ContainerImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        repository = aws.ecr.Repository(
            f"{name}-repo",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            force_delete=args.force_delete,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-keep-recent",
            repository=repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"keep the {KEEP_IMAGES} most recent images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": KEEP_IMAGES,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child,
        )

        image_ref: pulumi.Output[str]
        if args.image is not None:
            image_ref = pulumi.Output.from_input(args.image)
        else:
            import pulumi_docker_build as docker_build  # only needed when building

            # the platform is part of the tag: an arm64 and an amd64 build of one tree are different images
            tag = source_tag(args.context, build_args=args.build_args, platform=args.platform)
            context = relative_to_cwd(args.context)
            token = aws.ecr.get_authorization_token_output(
                registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            built = docker_build.Image(
                f"{name}-build",
                context={"location": context},
                dockerfile={"location": f"{context}/{DOCKERFILE}"},
                platforms=[args.platform],
                build_args=dict(args.build_args),
                push=True,
                # `pulumi preview` must work without a Docker engine; the build runs on `pulumi up`.
                build_on_preview=False,
                tags=[repository.repository_url.apply(lambda url: f"{url}:{tag}")],
                registries=[
                    {
                        "address": repository.repository_url,
                        "username": token.user_name,
                        "password": pulumi.Output.secret(token.password),
                    }
                ],
                opts=child,
            )
            image_ref = built.ref

        self.repository_url = repository.repository_url
        self.repository_arn = repository.arn
        self.image_ref = image_ref
        self.register_outputs(
            {"repository_url": self.repository_url, "repository_arn": self.repository_arn, "image_ref": self.image_ref}
        )
