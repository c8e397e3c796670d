"""scripts/settings_table.py: the settings reference generated from ``app.config.Settings``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from app.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("settings_table", ROOT / "scripts" / "settings_table.py")
assert SPEC and SPEC.loader
settings_table = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(settings_table)
DOC = ROOT / "docs" / "settings.md"


def rows() -> dict[str, tuple[str, str]]:
    out = {}
    for line in settings_table.table().splitlines():
        if line.startswith("| `PROXY_"):
            variable, default, meaning = (c.strip() for c in line.strip("|").split(" | "))
            out[variable.strip("`")] = (default, meaning)
    return out


def test_one_row_per_setting_with_its_default_and_comment() -> None:
    table = rows()
    assert list(table) == [f"PROXY_{name.upper()}" for name in Settings.model_fields]
    assert table["PROXY_READ_TIMEOUT_S"][0] == "`600`"
    assert table["PROXY_COOKIE_SECURE"][0] == "unset"
    assert table["PROXY_COOKIE_SECURE"][1].startswith("Dashboard cookie's Secure flag.")  # comment lines above
    assert table["PROXY_MAX_REQUEST_BODY_BYTES"][1] == "Anthropic's own 32 MB limit"  # trailing comment
    assert table["PROXY_BEDROCK_MODEL_MAP"][0] == "`{}`" and table["PROXY_QUOTAS_ENABLED"][0] == "`true`"


def test_comments_are_read_from_the_class_body_only() -> None:
    source = 'X = 1  # not a field\n\nclass Settings:\n    # --- section ---\n    # what a is\n    a: int = 1\n' \
             '    b: str = "x"  # what b is\n    c: int = 2\n'
    assert settings_table.field_comments(source) == {"a": "what a is", "b": "what b is"}


@pytest.mark.skipif(not DOC.exists(), reason="docs/settings.md is generated when the README's table moves there")
def test_docs_settings_md_is_the_generated_table() -> None:
    assert DOC.read_text() == settings_table.table(), "run: python scripts/settings_table.py > docs/settings.md"


def test_every_setting_says_what_it_means() -> None:
    empty = [name for name, (_, meaning) in rows().items() if not meaning]
    assert empty == [], f"settings without a comment or description in app/config.py: {empty}"
