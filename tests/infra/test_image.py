"""Image tags from the build context (pure part of infra/image.py) and how the build is wired."""

from __future__ import annotations

import shutil
from pathlib import Path

from infra.image import REPO_ROOT, context_files, relative_to_cwd, source_tag
from tests.infra.harness import BASE_CONFIG, ProgramRun

DOCKERIGNORE = "*\n!app/\n!pyproject.toml\n**/__pycache__\n**/*.pyc\n"


def make_tree(root: Path) -> None:
    (root / "app").mkdir()
    (root / "app" / "__init__.py").write_text("x = 1\n")
    (root / "Dockerfile").write_text("FROM python:3.11.13-slim\n")
    (root / "pyproject.toml").write_text("[project]\nname='x'\n")
    (root / ".dockerignore").write_text(DOCKERIGNORE)


def test_same_tree_same_tag_and_any_change_a_new_one(tmp_path: Path) -> None:
    make_tree(tmp_path)
    first = source_tag(tmp_path)
    assert first == source_tag(tmp_path)
    assert len(first) == 24 and int(first, 16) >= 0

    (tmp_path / "app" / "__init__.py").write_text("x = 2\n")
    assert source_tag(tmp_path) != first


def test_the_tag_follows_dockerignore_exactly(tmp_path: Path) -> None:
    make_tree(tmp_path)
    before = source_tag(tmp_path)
    assert context_files(tmp_path) == [".dockerignore", "Dockerfile", "app/__init__.py", "pyproject.toml"]
    # what Docker leaves out of the context does not change the tag ...
    (tmp_path / "app" / "__pycache__").mkdir()
    (tmp_path / "app" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "README.md").write_text("docs\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "big.so").write_bytes(b"\0" * 10)
    assert source_tag(tmp_path) == before
    # ... and whatever Docker sends does, including a file a too-narrow input list would miss
    (tmp_path / "app" / "static.css").write_text("body{}\n")
    assert source_tag(tmp_path) != before
    (tmp_path / "app" / "static.css").unlink()
    (tmp_path / ".dockerignore").write_text(DOCKERIGNORE + "!README.md\n")
    assert "README.md" in context_files(tmp_path)


def test_tag_is_independent_of_where_the_checkout_lives(tmp_path: Path) -> None:
    one, two = tmp_path / "alice" / "claude-code-proxy", tmp_path / "ci" / "build" / "src"
    one.mkdir(parents=True)
    make_tree(one)
    shutil.copytree(one, two)
    assert source_tag(one) == source_tag(two)


def test_build_args_and_platform_count(tmp_path: Path) -> None:
    make_tree(tmp_path)
    before = source_tag(tmp_path)
    assert source_tag(tmp_path, build_args={"PYTHON_IMAGE": "python:3.12-slim"}) != before
    assert source_tag(tmp_path, platform="linux/amd64") != before  # the default is linux/arm64


def test_the_repository_context_is_what_the_dockerfile_copies() -> None:
    files = context_files(REPO_ROOT)
    assert "Dockerfile" in files and "pyproject.toml" in files and "requirements.lock" in files
    assert any(f.startswith("app/") for f in files) and any(f.startswith("templates/") for f in files)
    assert not any(f.startswith(("tests/", "infra/", ".git/", ".venv/")) for f in files)


def test_build_uses_relative_paths_and_the_content_tag(http_stack: ProgramRun) -> None:
    build = http_stack.one("docker-build:index:Image").inputs
    assert build["context"]["location"] == relative_to_cwd(REPO_ROOT)
    assert not build["context"]["location"].startswith("/")
    assert build["dockerfile"]["location"] == f"{build['context']['location']}/Dockerfile"
    (tag,) = build["tags"]
    assert tag.endswith(":" + source_tag(REPO_ROOT))
    assert build.get("buildArgs", {}) == {}  # one image for every stack: nothing stack-specific baked in
    assert BASE_CONFIG.get("image") is None


def test_a_prebuilt_image_by_digest_builds_nothing(run) -> None:
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/claude-code-proxy@sha256:" + "ab" * 32
    stack = run({**BASE_CONFIG, "image": image})
    assert stack.of_type("docker-build:index:Image") == []
    assert stack.task_container()["image"] == image
    assert stack.init_container()["image"] == image
    assert not any("not pinned by digest" in w for w in stack.warnings)
    tagged = run({**BASE_CONFIG, "image": image.split("@")[0] + ":1.0"})
    assert any("not pinned by digest" in w for w in tagged.warnings)
