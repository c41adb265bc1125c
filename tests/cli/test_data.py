"""``mloop data``: profile, drift, validate and suggest over data files, and their exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli.checks import as_json, assert_one_error_line
from tests.cli.conftest import Invoke

ROWS = 300
MARKER = "ZQX-SECRET-ID"


def _frame(
    seed: int, *, shift: float = 0.0, cities: tuple[str, ...] = ("paris", "rome")
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.normal(100.0 + shift, 10.0, ROWS),
            "city": rng.choice(list(cities), ROWS),
            "qty": rng.integers(0, 40, ROWS),
            "user": [f"{MARKER}-{i}" for i in range(ROWS)],
        }
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A reference (Parquet and CSV), a same-distribution sample, and a shifted sample."""
    paths = {
        "ref": tmp_path / "ref.parquet",
        "ref_csv": tmp_path / "ref.csv",
        "same": tmp_path / "same.parquet",
        "shifted": tmp_path / "shifted.parquet",
    }
    reference = _frame(1)
    reference.to_parquet(paths["ref"])
    reference.to_csv(paths["ref_csv"], index=False)
    _frame(7).to_parquet(paths["same"])  # a seed whose columns all pass clearly
    _frame(3, shift=25.0, cities=("berlin", "oslo")).to_parquet(paths["shifted"])
    return paths


# --- profile ------------------------------------------------------------------------------


def test_profile_table(invoke: Invoke, files: dict[str, Path]) -> None:
    result = invoke("data", "profile", str(files["ref_csv"]))
    assert result.exit_code == 0, result.output
    for text in ("amount", "numeric", "city", "categorical", f"{ROWS} rows"):
        assert text in result.stdout


def test_profile_json_and_output(invoke: Invoke, files: dict[str, Path], tmp_path: Path) -> None:
    saved = tmp_path / "profile.json"
    body = as_json(
        invoke(
            "data",
            "profile",
            str(files["ref"]),
            "--json",
            "--bins",
            "5",
            "--top-k",
            "1",
            "--output",
            str(saved),
        )
    )
    assert body["rows"] == ROWS
    columns = {c["name"]: c for c in body["columns"]}
    assert len(columns["amount"]["histogram"]["counts"]) == 5
    assert len(columns["city"]["top"]) == 1
    assert json.loads(saved.read_text(encoding="utf-8")) == body


# --- drift --------------------------------------------------------------------------------


def test_drift_same_distribution_exits_0(invoke: Invoke, files: dict[str, Path]) -> None:
    result = invoke("data", "drift", str(files["ref"]), str(files["same"]))
    assert result.exit_code == 0, result.output
    assert "no drift" in result.stdout
    body = as_json(invoke("data", "drift", str(files["ref"]), str(files["same"]), "--json"))
    assert body["drifted"] is False
    assert body["n_drifted"] == 0


def test_drift_planted_shift_exits_3_and_writes_html(
    invoke: Invoke, files: dict[str, Path], tmp_path: Path
) -> None:
    html = tmp_path / "report.html"
    result = invoke("data", "drift", str(files["ref"]), str(files["shifted"]), "--html", str(html))
    assert result.exit_code == 3, result.output
    assert "DRIFT" in result.stdout
    text = html.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html")
    assert "amount" in text
    assert MARKER not in text


def test_drift_json(invoke: Invoke, files: dict[str, Path]) -> None:
    result = invoke("data", "drift", str(files["ref"]), str(files["shifted"]), "--json")
    assert result.exit_code == 3, result.output
    body = json.loads(result.stdout)
    assert body["drifted"] is True
    assert "amount" in {c["column"] for c in body["columns"] if c["drifted"]}


def test_drift_tests_thresholds_and_share(invoke: Invoke, files: dict[str, Path]) -> None:
    body = as_json(
        invoke(
            "data", "drift", str(files["ref"]), str(files["same"]), "--json",
            "--test", "psi", "--test", "city=hellinger", "--threshold", "amount=0.5",
            "--drift-share", "1",
        )
    )  # fmt: skip
    tests = {c["column"]: (c["test"], c["threshold"]) for c in body["columns"]}
    assert tests["amount"] == ("psi", 0.5)
    assert tests["city"][0] == "hellinger"
    assert body["drift_share"] == 1


def test_drift_from_a_saved_profile(invoke: Invoke, files: dict[str, Path], tmp_path: Path) -> None:
    saved = tmp_path / "ref-profile.json"
    assert invoke("data", "profile", str(files["ref"]), "--output", str(saved)).exit_code == 0
    same = as_json(
        invoke("data", "drift", str(saved), str(files["ref"]), "--reference-profile", "--json")
    )
    assert same["reference_is_profile"] is True
    assert same["drifted"] is False
    shifted = invoke("data", "drift", str(saved), str(files["shifted"]), "--reference-profile")
    assert shifted.exit_code == 3, shifted.output


# --- validate and suggest -----------------------------------------------------------------


def test_suggest_then_validate_round_trip(
    invoke: Invoke, files: dict[str, Path], tmp_path: Path
) -> None:
    suite = tmp_path / "suite.yaml"
    result = invoke(
        "data", "suggest", str(files["ref_csv"]), "--output", str(suite), "--name", "tx"
    )
    assert result.exit_code == 0, result.output
    assert suite.read_text(encoding="utf-8").startswith("suite: tx\n")
    passed = invoke("data", "validate", str(files["ref_csv"]), "--suite", str(suite))
    assert passed.exit_code == 0, passed.output
    assert "passed" in passed.stdout
    body = as_json(
        invoke("data", "validate", str(files["ref_csv"]), "--suite", str(suite), "--json")
    )
    assert body["success"] is True


def test_suggest_prints_yaml_and_json(invoke: Invoke, files: dict[str, Path]) -> None:
    printed = invoke("data", "suggest", str(files["ref"]))
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.startswith("suite: suggested\nexpectations:\n")
    body = as_json(invoke("data", "suggest", str(files["ref"]), "--json"))
    assert body["suite"] == "suggested"
    assert {"expect": "column_exists", "column": "amount"} in body["expectations"]


def test_validate_failures_exit_3(invoke: Invoke, files: dict[str, Path], tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "suite: tx\nexpectations:\n"
        "  - expect: in_range\n    column: amount\n    min: 0\n    max: 110\n"
        "  - expect: column_exists\n    column: missing\n",
        encoding="utf-8",
    )
    result = invoke("data", "validate", str(files["shifted"]), "--suite", str(suite))
    assert result.exit_code == 3, result.output
    assert "FAILED" in result.stdout
    assert "[red]" not in result.stdout
    body = json.loads(
        invoke(
            "data",
            "validate",
            str(files["shifted"]),
            "--suite",
            str(suite),
            "--json",
            "--sample-size",
            "1",
        ).stdout
    )
    assert body["success"] is False
    assert [r["success"] for r in body["results"]] == [False, False]


# --- bad input: one error line, exit 1 ----------------------------------------------------


def _corrupt(files: dict[str, Path], tmp_path: Path) -> tuple[Path, Path]:
    data = files["ref"].read_bytes()
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(data[:4] + bytes(range(256)) * 4 + data[-4:])
    return truncated, garbage


@pytest.mark.parametrize("command", ["profile", "suggest", "validate", "drift"])
def test_bad_data_files_are_one_error_line(
    invoke: Invoke, files: dict[str, Path], tmp_path: Path, command: str
) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("suite: s\nexpectations: []\n", encoding="utf-8")
    unknown = tmp_path / "data.xlsx"
    unknown.write_bytes(b"PK")
    truncated, garbage = _corrupt(files, tmp_path)
    for path, message in (
        (tmp_path / "missing.parquet", "no data file"),
        (truncated, "as Parquet"),
        (garbage, "as Parquet"),
        (unknown, "cannot tell the format"),
    ):
        args = {
            "profile": ("data", "profile", str(path)),
            "suggest": ("data", "suggest", str(path)),
            "validate": ("data", "validate", str(path), "--suite", str(suite)),
            "drift": ("data", "drift", str(files["ref"]), str(path)),
        }[command]
        line = assert_one_error_line(invoke(*args, "--json"))
        assert message in line and path.name in line, line
        assert_one_error_line(invoke(*args))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--test", "nope"), "unknown drift test 'nope'"),
        (("--test", "amount=nope"), "unknown drift test 'nope'"),
        (("--test", "=psi"), "is not NAME or COLUMN=NAME"),
        (("--test", "psi", "--test", "ks"), "two tests for every column"),
        (("--threshold", "amount"), "is not COLUMN=NUMBER"),
        (("--threshold", "amount=high"), "is not COLUMN=NUMBER"),
        (("--threshold", "nosuch=0.1"), "unknown column 'nosuch'"),
        (("--drift-share", "0"), "drift_share must be in (0, 1]"),
    ],
)
def test_bad_drift_options_are_one_error_line(
    invoke: Invoke, files: dict[str, Path], extra: tuple[str, ...], message: str
) -> None:
    line = assert_one_error_line(
        invoke("data", "drift", str(files["ref"]), str(files["same"]), *extra)
    )
    assert message in line, line


def test_bad_reference_profile_is_one_error_line(invoke: Invoke, files: dict[str, Path]) -> None:
    line = assert_one_error_line(
        invoke("data", "drift", str(files["ref"]), str(files["same"]), "--reference-profile")
    )
    assert "is not JSON" in line, line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("suite: [\n", "suite YAML does not parse at line 2"),
        ("suite: s\nexpectations:\n  - expect: frobnicate\n", "expectations[0]"),
    ],
)
def test_bad_suites_are_one_error_line(
    invoke: Invoke, files: dict[str, Path], tmp_path: Path, text: str, message: str
) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(text, encoding="utf-8")
    line = assert_one_error_line(
        invoke("data", "validate", str(files["ref"]), "--suite", str(suite))
    )
    assert message in line, line


def test_missing_suite_is_one_error_line(
    invoke: Invoke, files: dict[str, Path], tmp_path: Path
) -> None:
    line = assert_one_error_line(
        invoke("data", "validate", str(files["ref"]), "--suite", str(tmp_path / "none.yaml"))
    )
    assert "no suite file" in line
