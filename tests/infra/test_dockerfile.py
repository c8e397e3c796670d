"""Static checks of the root Dockerfile and .dockerignore (no Docker engine needed).

The checker functions are tested on bad inputs too, so each rule is shown able to fail.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.container import APP_UID, CONTAINER_PORT, HEALTH_CHECK_COMMAND
from infra.urls import CA_BUNDLE_PATH

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|KEY", re.IGNORECASE)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Dockerfile -> instructions, with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, args = buffer.strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        buffer = ""
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by FROM (index 0 holds any global ARGs before the first FROM)."""
    groups: list[list[Instruction]] = [[]]
    for ins in instructions:
        if ins.keyword == "FROM":
            groups.append([])
        groups[-1].append(ins)
    return groups


def key_values(args: str) -> dict[str, str | None]:
    """``ENV A=1 B="x y"`` / ``ARG A=1`` / ``ARG A`` / legacy ``ENV A 1`` -> {name: value or None}."""
    words = shlex.split(args)
    if len(words) >= 2 and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    result: dict[str, str | None] = {}
    for word in words:
        name, sep, value = word.partition("=")
        result[name] = value if sep else None
    return result


def base_images(instructions: list[Instruction]) -> list[str]:
    """FROM images with ``${ARG}`` defaults from the global ARGs substituted; stage aliases skipped."""
    globals_: dict[str, str] = {}
    for ins in stages(instructions)[0]:
        if ins.keyword == "ARG":
            globals_.update({k: v for k, v in key_values(ins.args).items() if v is not None})
    aliases: set[str] = set()
    images = []
    for ins in instructions:
        if ins.keyword != "FROM":
            continue
        words = [w for w in ins.args.split() if not w.startswith("--")]
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: globals_.get(m.group(1), m.group(0)), words[0])
        if len(words) >= 3 and words[1].upper() == "AS":
            aliases.add(words[2])
        if image not in aliases:
            images.append(image)
    return images


def problems(text: str) -> list[str]:
    """Every rule the Dockerfile breaks: multi-stage, slim Python 3.11 base pinned by tag *and* digest,
    non-root final USER, HEALTHCHECK without curl, no secret-looking ENV/ARG with a value, and these
    hadolint rules: DL3020 (ADD only for URLs), DL3025 (JSON-form CMD), DL4006 (pipefail before a
    pipe), DL3042 (no pip cache), DL3007 (no ``latest``)."""
    instructions = parse(text)
    found: list[str] = []
    groups = stages(instructions)
    if len(groups) < 3:
        found.append("not multi-stage")
    for image in base_images(instructions):
        if not re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?@sha256:[a-f0-9]{64}", image):
            found.append(f"base image {image} is not a python:3.11.<patch>-slim tag pinned by @sha256 digest")
    final = groups[-1]
    users = [ins.args for ins in final if ins.keyword == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        found.append("final stage does not switch to a non-root USER")
    checks = [ins.args for ins in final if ins.keyword == "HEALTHCHECK"]
    if not checks or "NONE" in checks[-1].split():
        found.append("no HEALTHCHECK in the final stage")
    elif "curl" in checks[-1] or "/health" not in checks[-1]:
        found.append("HEALTHCHECK must probe /health without curl")
    for stage in groups[1:]:
        shell_pipefail = False
        no_pip_cache = False
        for ins in stage:
            if ins.keyword == "SHELL" and "pipefail" in ins.args:
                shell_pipefail = True
            if ins.keyword == "ENV" and key_values(ins.args).get("PIP_NO_CACHE_DIR") in ("1", "true", "on"):
                no_pip_cache = True
            if ins.keyword == "RUN" and "|" in ins.args.replace("||", "") and not shell_pipefail:
                found.append("DL4006: RUN with a pipe but no SHELL with -o pipefail")
            if ins.keyword == "RUN" and "pip install" in ins.args and not (no_pip_cache or "--no-cache-dir" in ins.args):
                found.append("DL3042: pip install keeps its cache")
    for ins in instructions:
        if ins.keyword == "ADD":
            sources = [w for w in ins.args.split() if not w.startswith("--")][:-1]
            if not all(re.match(r"https://", src) for src in sources):
                found.append("DL3020: ADD for a local file (use COPY)")
        if ins.keyword in ("CMD", "ENTRYPOINT") and not ins.args.startswith("["):
            found.append(f"DL3025: {ins.keyword} is not in JSON (exec) form")
        if ins.keyword == "FROM" and re.search(r":latest\b", ins.args):
            found.append("DL3007: FROM uses latest")
    for ins in instructions:
        if ins.keyword in ("ENV", "ARG"):
            for name, value in key_values(ins.args).items():
                if SECRET_NAME.search(name) and value:
                    found.append(f"{ins.keyword} {name} carries a value; secrets come from Secrets Manager")
    return found


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_passes_every_rule(dockerfile: str) -> None:
    assert problems(dockerfile) == []


PIN = "@sha256:" + "a" * 64
TWO = f"FROM python:3.11.9-slim{PIN} AS b\nFROM python:3.11.9-slim{PIN}\n"  # two pinned stages
CHECK = "HEALTHCHECK CMD x /health\n"


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        ("FROM python:latest\nUSER app\n" + CHECK, "not multi-stage"),
        ("FROM python:3.11-slim AS b\nFROM python:3.11-slim\nUSER 1\n" + CHECK, "is not a python"),
        ("FROM python:3.11.9-slim AS b\nFROM python:3.11.9-slim\nUSER 1\n" + CHECK, "pinned by @sha256"),
        (TWO + "USER 1\nADD app /srv/app\n" + CHECK, "DL3020"),
        (TWO + "USER 1\nCMD claude-code-proxy serve\n" + CHECK, "DL3025"),
        (TWO + "USER 1\nRUN curl -s x | sh\n" + CHECK, "DL4006"),
        (TWO + "USER 1\nRUN pip install x\n" + CHECK, "DL3042"),
        (TWO + "USER root\n" + CHECK, "non-root USER"),
        (TWO + CHECK, "non-root USER"),
        (TWO + "USER 10\n", "no HEALTHCHECK"),
        (TWO + "USER 10\nHEALTHCHECK CMD curl -f localhost/health\n", "without curl"),
        (f"FROM python:3.11.9-slim{PIN} AS b\nENV API_KEY=abc\nFROM python:3.11.9-slim{PIN}\nUSER 1\n" + CHECK, "ENV API_KEY"),
        ("ARG DB_PASSWORD=hunter2\n" + TWO + "USER 1\n" + CHECK, "ARG DB_PASSWORD"),
        (TWO + "USER 1\nENV SECRET_TOKEN \\\n  s3cr3t\n" + CHECK, "ENV SECRET_TOKEN"),
    ],
)
def test_the_checker_catches_each_broken_rule(bad: str, rule: str) -> None:
    assert any(rule in p for p in problems(bad)), problems(bad)


def test_final_user_is_the_uid_the_task_definition_uses(dockerfile: str) -> None:
    final = stages(parse(dockerfile))[-1]
    (user,) = [ins.args for ins in final if ins.keyword == "USER"]
    assert user == f"{APP_UID}:{APP_UID}"


def test_healthcheck_matches_the_task_definitions(dockerfile: str) -> None:
    final = stages(parse(dockerfile))[-1]
    (check,) = [ins.args for ins in final if ins.keyword == "HEALTHCHECK"]
    exec_form = json.loads(check[check.index("CMD") + 3 :].strip())
    assert exec_form == list(HEALTH_CHECK_COMMAND)


def test_dependencies_come_from_the_lock_and_infra_stays_out(dockerfile: str) -> None:
    runs = [ins.args for ins in parse(dockerfile) if ins.keyword == "RUN"]
    installs = [r for r in runs if "pip install" in r]
    assert installs and all("-c requirements.lock" in r for r in installs)
    assert any("-e ." in r for r in installs)
    assert not any(x in dockerfile for x in ("[infra]", "[dev]", "pulumi"))


def test_ca_bundle_is_baked_in_at_the_url_the_connection_string_names(dockerfile: str) -> None:
    adds = [ins.args.split() for ins in parse(dockerfile) if ins.keyword == "ADD"]
    assert ["https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem", CA_BUNDLE_PATH] in [
        [w for w in words if not w.startswith("--")] for words in adds
    ]
    final = stages(parse(dockerfile))[-1]
    assert any(ins.keyword == "COPY" and "/srv/certs" in ins.args for ins in final)


def test_ca_bundle_is_checked_with_sha256sum_before_use(dockerfile: str) -> None:
    build = next(stage for stage in stages(parse(dockerfile))[1:] if any(i.keyword == "ADD" for i in stage))
    keywords = [i.keyword for i in build]
    add_at = keywords.index("ADD")
    check = next(i for i in build[add_at:] if i.keyword == "RUN")
    assert "sha256sum -c" in check.args and CA_BUNDLE_PATH in check.args and "RDS_CA_BUNDLE_SHA256" in check.args
    assert "RDS_CA_BUNDLE_SHA256" in key_values(next(i.args for i in build[:add_at] if i.keyword == "ARG"))


def rds_ca_bundle_pin(dockerfile: str) -> str | None:
    for ins in parse(dockerfile):
        if ins.keyword == "ARG" and "RDS_CA_BUNDLE_SHA256" in key_values(ins.args):
            return key_values(ins.args)["RDS_CA_BUNDLE_SHA256"]
    return None


@pytest.mark.xfail(
    strict=True,
    reason="the SHA-256 of global-bundle.pem could not be computed offline; pin it (docs/deploy.md) and drop this mark",
)
def test_ca_bundle_checksum_is_pinned(dockerfile: str) -> None:
    assert re.fullmatch(r"[a-f0-9]{64}", rds_ca_bundle_pin(dockerfile) or "")


def test_no_stack_specific_build_argument(dockerfile: str, http_stack) -> None:
    """One image for every stack: only the base image and the CA pin are build args, with defaults,
    and the program passes none (a stack-specific value would make dev and prod images differ)."""
    args = {k: v for ins in parse(dockerfile) if ins.keyword == "ARG" for k, v in key_values(ins.args).items()}
    assert set(args) == {"PYTHON_IMAGE", "RDS_CA_BUNDLE_SHA256"}
    build = http_stack.one("docker-build:index:Image").inputs
    assert not build.get("buildArgs")


def test_app_and_templates_land_side_by_side_in_srv(dockerfile: str) -> None:
    final = stages(parse(dockerfile))[-1]
    copies = {ins.args.split()[-1] for ins in final if ins.keyword == "COPY"}
    assert {"/srv/app", "/srv/templates"} <= copies


def test_server_trusts_proxy_headers_and_drains_on_shutdown(dockerfile: str) -> None:
    final = stages(parse(dockerfile))[-1]
    (cmd,) = [ins.args for ins in final if ins.keyword == "CMD"]
    for flag in ("--proxy-headers", "--forwarded-allow-ips", "--timeout-graceful-shutdown", f"--port {CONTAINER_PORT}"):
        assert flag in cmd
    assert "exec claude-code-proxy serve" in cmd
    env = {k: v for ins in final if ins.keyword == "ENV" for k, v in key_values(ins.args).items()}
    assert {"FORWARDED_ALLOW_IPS", "GRACEFUL_SHUTDOWN_S"} <= set(env)
    assert [ins.args for ins in final if ins.keyword == "EXPOSE"] == [str(CONTAINER_PORT)]


def dockerignored(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes; a pattern also matches a path's
    parent directories; ``**`` matches any number of directories."""
    excluded = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        regex = (
            re.escape(body)
            .replace(r"\*\*/", "(.*/)?")
            .replace(r"\*\*", ".*")
            .replace(r"\*", "[^/]*")
            .replace(r"\?", "[^/]")
        )
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_the_context_to_what_the_build_needs() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "node_modules/x/index.js",
        "tests/e2e/node_modules/a.js",
        "tests/infra/test_x.py",
        "test-artifacts/report.html",
        ".env",
        "app/.env",
        "venv/bin/python",
        "infra/__main__.py",
        "app/__pycache__/main.cpython-311.pyc",
        "Pulumi.dev.yaml",
    ):
        assert dockerignored(patterns, path), f"{path} would be sent to the Docker daemon"
    for path in (
        "app/__init__.py",
        "app/proxy/routes.py",
        "templates/base.html",
        "pyproject.toml",
        "requirements.lock",
    ):
        assert not dockerignored(patterns, path), f"{path} is needed by the build"


def test_dockerignore_matcher_sanity() -> None:
    assert dockerignored(["*"], "a/b")
    assert not dockerignored(["*", "!app/"], "app/x.py")
    assert dockerignored(["*", "!app/", "**/__pycache__"], "app/__pycache__/x.pyc")
    assert not dockerignored(["tests"], "app/tests.py")
