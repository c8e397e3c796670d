"""Container image: the ECR repository (scan on push, immutable tags) and the image, either built
from the repository's Dockerfile with pulumi-docker-build (BuildKit) and pushed there, or taken
from the ``image`` config as a URI.

Tags are immutable, so a build is tagged with a digest of what goes into it (``source_tag``): an
unchanged tree reuses its tag, any change gets a new one. The task definition uses the pushed
image's ``ref`` (``<tag>@sha256:...``), so a deploy always runs the exact bytes that were built.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

#: Repository root (the Docker build context): infra/ sits directly under it.
REPO_ROOT = Path(__file__).resolve().parent.parent
#: What the Dockerfile copies; a change to any of these needs a new image.
BUILD_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "requirements.lock", "app", "templates")
#: Default build platform; the stack passes the one matching ``cpuArchitecture`` (Graviton: arm64).
PLATFORM = "linux/arm64"
KEEP_IMAGES = 30


def source_tag(root: Path, inputs: Iterable[str] = BUILD_INPUTS, build_args: Mapping[str, str] | None = None) -> str:
    """A 16-hex-digit tag from the paths and bytes of every file under ``inputs`` (missing ones
    skipped; ``__pycache__`` and ``*.pyc`` ignored) and the build args. Same tree -> same tag."""
    digest = hashlib.sha256()
    for name in inputs:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] if path.is_file() else []
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(file.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    for key, value in sorted((build_args or {}).items()):
        digest.update(f"--build-arg {key}={value}\0".encode())
    return digest.hexdigest()[:16]


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
            tag = source_tag(args.context, build_args={**args.build_args, "TARGETPLATFORM": args.platform})
            token = aws.ecr.get_authorization_token_output(
                registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            built = docker_build.Image(
                f"{name}-build",
                context={"location": str(args.context)},
                dockerfile={"location": str(args.context / "Dockerfile")},
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
