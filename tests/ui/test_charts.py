"""app/ui/charts.py: SVG bar charts and share bars (pure)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from app.ui.charts import Bar, compact, nice_max, share_bar, stacked_bars

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("value,expected", [(0, 1), (0.3, 0.5), (1, 1), (3, 5), (7, 10), (13_911, 20_000),
                                            (2_400, 2_500)])
def test_nice_max(value: float, expected: float) -> None:
    assert nice_max(value) == expected


@pytest.mark.parametrize("value,expected", [(0, "0"), (2.5, "2.5"), (950, "950"), (12_000, "12k"),
                                            (1_500_000, "1.5M")])
def test_compact_axis_labels(value: float, expected: str) -> None:
    assert compact(value) == expected


def test_stacked_bars_titles_segments_and_valid_svg() -> None:
    svg = str(stacked_bars([Bar("01:00", (3, 1)), Bar("02:00", (0, 0)), Bar("03:00", (6, 2))],
                           ["direct", "fallback"], title="Requests"))
    root = ET.fromstring(svg)
    assert root.find(f"{SVG}title").text == "Requests"
    groups = root.findall(f"{SVG}g")
    assert [g.find(f"{SVG}title").text for g in groups] == [
        "01:00: 4 (direct 3, fallback 1)", "02:00: 0 (direct 0, fallback 0)", "03:00: 8 (direct 6, fallback 2)"]
    heights = [float(r.get("height")) for r in groups[2].findall(f"{SVG}rect") if r.get("class") in ("s0", "s1")]
    assert heights[0] == pytest.approx(3 * heights[1])  # proportional to the values
    assert "no data" not in svg


def test_stacked_bars_escape_text_and_say_no_data() -> None:
    svg = str(stacked_bars([Bar("<b>", (0,))], ["x"], title="<script>"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;" in svg
    assert "no data in this range" in svg
    ET.fromstring(svg)


def test_share_bar_parts_and_percentages() -> None:
    svg = str(share_bar([("anthropic", 3), ("bedrock", 1), ("none", 0)], title="By provider"))
    titles = [t.text for t in ET.fromstring(svg).iter(f"{SVG}title")]
    assert titles == ["By provider", "anthropic: 3 (75.0%)", "bedrock: 1 (25.0%)"]
    assert "<g>" not in str(share_bar([("a", 0)], title="t"))


def test_x_labels_alternate_minor_and_hug_the_edges() -> None:
    bars = [Bar(f"L{i:02d}", (1.0,)) for i in range(24)]
    svg = str(stacked_bars(bars, ["requests"], title="t"))
    labels = re.findall(r'<text class="axis x( minor)?" x="([\d.]+)" y="[\d.]+" text-anchor="(\w+)">(L\d+)</text>', svg)
    assert [name for *_, name in labels] == ["L00", "L03", "L06", "L09", "L12", "L15", "L18", "L21"]  # <= 8 labels
    assert [bool(minor) for minor, *_ in labels] == [False, True] * 4  # phones hide every other one
    assert labels[0][2] == "start" and labels[-1][2] == "end"  # never cut off at the edges
    assert all(anchor == "middle" for _, _, anchor, _ in labels[1:-1])
