"""Drift report rendering: terminal summary and one self-contained, escaped HTML file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from mloop.data.drift import DriftReport, drift
from mloop.data.report import render_text, to_html

EVIL = "<script>alert(1)</script>"


def report(rows: int, seed: int = 0) -> DriftReport:
    g = np.random.default_rng(seed)
    ref = pd.DataFrame(
        {
            "x": g.normal(size=2_000),
            EVIL: g.choice(["a", EVIL, "b&c"], 2_000),
            "marker": [f"REF-MARKER-{i}" for i in range(2_000)],
        }
    )
    cur = pd.DataFrame(
        {
            "x": g.normal(1.0, size=rows),
            EVIL: g.choice(["a", EVIL, '"q"'], rows),
            "marker": [f"CUR-MARKER-{i}" for i in range(rows)],
            "extra": g.normal(size=rows),
        }
    )
    return drift(ref, cur)


def test_terminal_summary_lists_columns_and_verdicts() -> None:
    text = render_text(report(1_000), width=200)
    assert "missing in reference" in report(1_000).render_text()
    assert "Dataset DRIFTED" in text or "Dataset no drift" in text
    for word in ("x", "wasserstein", "DRIFT", "MISSING", "missing in reference"):
        assert word in text
    assert EVIL in text  # shown literally, not parsed as rich markup
    assert "\x1b[" not in text
    assert "\x1b[" in render_text(report(1_000), color=True)


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    result = report(1_000)
    path = tmp_path / "drift.html"
    result.save_html(path)
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)\s*=""", page)
    assert "http://" not in page and "https://" not in page
    assert "MARKER-" not in page


def test_html_size_does_not_grow_with_rows() -> None:
    small = len(to_html(report(1_000)))
    large = len(to_html(report(200_000)))
    assert large < small * 1.1
    assert large < 60_000


def test_render_prints_the_summary_like_validation_does() -> None:
    from rich.console import Console

    console = Console(record=True, width=120)
    report(1_000).render(console)
    assert "missing in reference" in console.export_text()


def test_binned_columns_are_noted_in_both_renderings() -> None:
    result = report(200_000)  # more current rows than max_rows_in_memory: tested on bins
    assert result["x"].method == "binned" and result["x"].approximate
    assert "binned" in render_text(result, width=200)
    assert "<td>binned</td>" in to_html(result)


def test_report_records_are_one_class_wherever_imported() -> None:
    import importlib

    import mloop.data
    from mloop.data import drift_report

    drift_module = importlib.import_module("mloop.data.drift")  # the package attribute is the verb

    for name in ("ColumnDrift", "DriftReport"):
        record = getattr(drift_report, name)
        assert getattr(drift_module, name) is record is getattr(mloop.data, name)
        assert name in drift_module.__all__ and name in mloop.data.__all__
    assert isinstance(report(100), drift_report.DriftReport)
