"""Image tags from the build inputs (pure part of infra/image.py)."""

from __future__ import annotations

from pathlib import Path

from infra.image import source_tag


def make_tree(root: Path) -> None:
    (root / "app").mkdir()
    (root / "app" / "__init__.py").write_text("x = 1\n")
    (root / "Dockerfile").write_text("FROM python:3.11.13-slim\n")


def test_same_tree_same_tag_and_any_change_a_new_one(tmp_path: Path) -> None:
    make_tree(tmp_path)
    first = source_tag(tmp_path)
    assert first == source_tag(tmp_path)
    assert len(first) == 16 and int(first, 16) >= 0

    (tmp_path / "app" / "__init__.py").write_text("x = 2\n")
    assert source_tag(tmp_path) != first


def test_bytecode_is_ignored_and_build_args_count(tmp_path: Path) -> None:
    make_tree(tmp_path)
    before = source_tag(tmp_path)
    (tmp_path / "app" / "__pycache__").mkdir()
    (tmp_path / "app" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert source_tag(tmp_path) == before
    assert source_tag(tmp_path, build_args={"FORWARDED_ALLOW_IPS": "10.0.0.0/20"}) != before


def test_renaming_a_file_changes_the_tag(tmp_path: Path) -> None:
    make_tree(tmp_path)
    before = source_tag(tmp_path)
    (tmp_path / "app" / "__init__.py").rename(tmp_path / "app" / "main.py")
    assert source_tag(tmp_path) != before
