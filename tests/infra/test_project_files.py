"""Project files around the program: Pulumi.yaml, pins, documented config keys, component shape."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DOCS = ROOT / "docs" / "deploy.md"


def lock_versions() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s]+)", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def test_pulumi_yaml_runs_the_infra_folder_in_its_own_virtualenv() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "claude-code-proxy"
    assert project["main"] == "infra/"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"] == {"toolchain": "pip", "virtualenv": "venv"}
    assert (INFRA / "__main__.py").is_file()


def test_program_requirements_are_pinned_to_the_lock() -> None:
    lock = lock_versions()
    lines = [line.split("#")[0].strip() for line in (INFRA / "requirements.txt").read_text().splitlines()]
    pins = dict(line.split("==") for line in lines if line)
    assert {"pulumi", "pulumi-aws", "pulumi-random"} <= set(pins)
    for name, version in pins.items():
        assert re.fullmatch(r"\d+(\.\d+)*", version), f"{name} is not pinned to an exact version"
        if name in lock:
            assert lock[name] == version, (
                f"{name}: infra/requirements.txt has {version}, requirements.lock has {lock[name]}"
            )


def config_keys_read_by_the_program() -> set[str]:
    source = (INFRA / "stack_config.py").read_text() + (INFRA / "ops_config.py").read_text()
    keys = set(re.findall(r'(?:cfg|config)\.get(?:_secret|_object)?\("(\w+)"\)', source))
    keys |= set(re.findall(r'config\.get_object\("(\w+)"\)', source))
    keys |= set(re.findall(r'_(?:int|strings|bool)\(\s*cfg, "(\w+)"', source))
    return keys | {"aws:region"}


def test_every_config_key_is_documented_and_in_the_dev_stack_file() -> None:
    keys = config_keys_read_by_the_program()
    assert len(keys) > 30  # the regexes above really found the keys
    docs = DOCS.read_text()
    documented = set(re.findall(r"^\| `([\w:]+)` \|", docs, re.MULTILINE))
    dev = (ROOT / "Pulumi.dev.yaml").read_text()
    for key in keys:
        assert key in documented, f"{key} missing from the config table in docs/deploy.md"
        assert re.search(rf"(claude-code-proxy:)?{re.escape(key)}\b", dev), f"{key} missing from Pulumi.dev.yaml"
    assert documented - keys - {"aws:defaultTags"} == set(), "docs list keys the program does not read"
    for removed in ("bedrockModelIds", "bedrockInferenceProfileIds", "bedrockRegions"):
        assert removed not in keys and not re.search(rf"^\s*claude-code-proxy:{removed}:", dev, re.MULTILINE)


def components() -> list[tuple[Path, ast.ClassDef]]:
    found = []
    for path in sorted(INFRA.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "pulumi.ComponentResource" for b in node.bases):
                found.append((path, node))
    return found


def test_one_component_per_module_with_a_project_type_token_and_real_outputs() -> None:
    found = components()
    assert len(found) == 15
    assert len({path for path, _ in found}) == len(found), "two components share a module"
    for path, cls in found:
        init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
        token = ast.unparse(init.body[0])
        assert re.search(r"super\(\)\.__init__\('claude-proxy:\w+:" + cls.name, token), f"{path.name}: {token}"
        last = ast.unparse(init.body[-1])
        assert last.startswith("self.register_outputs({") and last != "self.register_outputs({})", (
            f"{path.name} must end with register_outputs"
        )


def test_component_args_are_frozen_dataclasses() -> None:
    for path, cls in components():
        tree = ast.parse(path.read_text())
        args = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == f"{cls.name}Args")
        assert any(ast.unparse(d) == "dataclass(frozen=True)" for d in args.decorator_list), (
            f"{args.name} is not frozen"
        )


#: The one app module the program may import: the model table (standard library only; see
#: tests/infra/test_bedrock_access.py), so the task role follows the models the app routes to.
ALLOWED_APP_MODULES = {"app.bedrock.models"}


def test_program_imports_neither_the_app_nor_boto() -> None:
    for path in INFRA.glob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        forbidden = {m for m in modules if m.split(".")[0] in ("app", "boto3", "botocore", "aioboto3")}
        assert not forbidden - ALLOWED_APP_MODULES, path.name
