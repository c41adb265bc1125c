"""Saving and loading packages: the manifest, digests, tampering and malformed folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from mloop.errors import (
    AlreadyExists,
    DigestMismatch,
    IntegrityError,
    InvalidInput,
    InvalidState,
    NotFound,
)
from mloop.models import (
    MANIFEST_FILE,
    ModelCallFailed,
    PackageManifest,
    load_model,
    read_manifest,
    save_model,
    verify_package,
)
from tests.models.conftest import resign


@pytest.fixture
def package(tmp_path: Path, frame: pd.DataFrame, labels: np.ndarray) -> Path:
    model = LogisticRegression().fit(frame, labels)
    save_model(
        model,
        tmp_path / "pkg",
        input_example=frame.head(3),
        metadata={"team": "risk"},
    )
    return tmp_path / "pkg"


def test_save_writes_manifest_with_every_file(package: Path, frame: pd.DataFrame) -> None:
    manifest = read_manifest(package)
    assert manifest.flavor == "sklearn"
    assert manifest.flavor_version
    assert manifest.python_version.count(".") == 2
    assert set(manifest.files) == {"model.skops", "input_example.json", "requirements.txt"}
    assert manifest.input_example == "input_example.json"
    assert any(r.startswith("scikit-learn==") for r in manifest.requirements)
    assert (package / "requirements.txt").read_text().splitlines() == manifest.requirements
    assert manifest.metadata == {"team": "risk"}
    assert manifest.signature is not None
    assert manifest.signature.column_names == ["amount", "count", "score"]
    assert manifest.signature.outputs is not None  # inferred by calling the model
    assert len(manifest.digest) == 64
    assert PackageManifest.from_dict(manifest.to_dict()) == manifest
    assert sorted(os.listdir(package.parent)) == ["pkg"]  # no staging folder left


def test_round_trip_predicts_the_same(
    package: Path, frame: pd.DataFrame, labels: np.ndarray
) -> None:
    original = LogisticRegression().fit(frame, labels)
    model = load_model(package)
    assert model.flavor == "sklearn"
    assert model.digest == read_manifest(package).digest
    np.testing.assert_array_equal(model.predict(frame), original.predict(frame))
    np.testing.assert_allclose(model.predict_proba(frame), original.predict_proba(frame))
    records = frame.head(2).to_dict("records")
    np.testing.assert_array_equal(model.predict(records), original.predict(frame.head(2)))
    np.testing.assert_array_equal(model.predict(frame.to_numpy()), original.predict(frame))
    pd.testing.assert_frame_equal(model.input_example, frame.head(3))
    assert model.input_columns == ["amount", "count", "score"]


def test_model_fitted_on_arrays_accepts_frames(tmp_path: Path, frame: pd.DataFrame) -> None:
    y = frame["amount"].to_numpy() * 2
    save_model(LinearRegression().fit(frame.to_numpy(), y), tmp_path / "p", input_example=frame)
    model = load_model(tmp_path / "p")
    np.testing.assert_allclose(model.predict(frame), y)
    assert not hasattr(model, "predict_proba")  # duck-typing sees a regressor
    with pytest.raises(InvalidState, match=r"LinearRegression.*no predict_proba"):
        model.predict_proba(frame)


def test_save_refuses_existing_folder(package: Path) -> None:
    with pytest.raises(AlreadyExists, match=r"already exists"):
        save_model(LinearRegression(), package)
    empty = package.parent / "empty"
    empty.mkdir()
    save_model(LinearRegression().fit([[1.0], [2.0]], [1.0, 2.0]), empty)
    assert (empty / MANIFEST_FILE).is_file()


def test_failed_save_leaves_nothing(tmp_path: Path, frame: pd.DataFrame) -> None:
    class Broken:
        def predict(self, data: object) -> object:
            raise RuntimeError("boom")

    with pytest.raises(InvalidInput, match=r"failed on its own input example") as err:
        save_model(Broken(), tmp_path / "b", input_example=frame.head(2))
    assert err.value.details["field"] == "input_example"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"flavor": "tensorflow"}, "flavor"),
        ({"metadata": {"when": object()}}, "metadata"),
        ({"requirements": ["ok", ""]}, "requirements"),
        ({"trusted_types": "x"}, "trusted_types"),
        ({"signature": {"inputs": []}}, "signature"),
    ],
)
def test_save_refuses_bad_arguments(tmp_path: Path, kwargs: dict[str, object], field: str) -> None:
    model = LinearRegression().fit([[1.0], [2.0]], [1.0, 2.0])
    with pytest.raises(InvalidInput) as err:
        save_model(model, tmp_path / "p", **kwargs)  # type: ignore[arg-type]
    assert err.value.details["field"] == field
    assert not (tmp_path / "p").exists()


def test_save_refuses_example_that_breaks_given_signature(
    tmp_path: Path, frame: pd.DataFrame, labels: np.ndarray
) -> None:
    from mloop.models import infer_signature

    sig = infer_signature(frame)
    with pytest.raises(InvalidInput, match=r"missing column.*'score'"):
        save_model(
            LogisticRegression().fit(frame, labels),
            tmp_path / "p",
            input_example=frame[["amount", "count"]],
            signature=sig,
        )


@pytest.mark.parametrize("name", ["model.skops", "input_example.json", "requirements.txt"])
def test_one_changed_byte_is_refused_naming_the_file(package: Path, name: str) -> None:
    path = package / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch, match=f"file '{name}'.*modified after saving") as err:
        load_model(package)
    assert err.value.details["field"] == name


def test_truncated_file_is_refused_by_size(package: Path) -> None:
    path = package / "model.skops"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DigestMismatch, match=r"'model.skops' .* has \d+ bytes, the manifest says"):
        load_model(package)


def test_missing_and_extra_files_are_refused(package: Path) -> None:
    (package / "notes.txt").write_text("hi")
    with pytest.raises(IntegrityError, match=r"does not list: notes.txt") as err:
        load_model(package)
    assert err.value.details["field"] == "notes.txt"
    (package / "notes.txt").unlink()
    (package / "requirements.txt").unlink()
    with pytest.raises(IntegrityError, match=r"missing file.*requirements.txt"):
        load_model(package)


def test_symlink_is_refused(package: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("x")
    (package / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(IntegrityError, match=r"'link', which is not a plain file"):
        load_model(package)


def test_expected_digest_pins_the_manifest(package: Path) -> None:
    digest = read_manifest(package).digest
    assert load_model(package, expected_digest=digest).digest == digest
    data = json.loads((package / MANIFEST_FILE).read_text())
    data["metadata"]["team"] = "someone-else"
    (package / MANIFEST_FILE).write_text(json.dumps(data))
    load_model(package)  # still self-consistent ...
    with pytest.raises(DigestMismatch, match=f"{MANIFEST_FILE}.*expected {digest}"):
        load_model(package, expected_digest=digest)  # ... but not the package recorded


def test_no_package_here(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"not a folder"):
        read_manifest(tmp_path / "nope")
    with pytest.raises(NotFound, match=f"no {MANIFEST_FILE}"):
        load_model(tmp_path)


def _edit(package: Path, change: object) -> None:
    path = package / MANIFEST_FILE
    data = json.loads(path.read_text())
    change(data)  # type: ignore[operator]
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("change", "field", "match"),
    [
        (lambda d: d.pop("flavor"), "flavor", "missing field"),
        (lambda d: d.update(flavor=3), "flavor", "'flavor' must be a non-empty string"),
        (lambda d: d.update(flavor="keras"), "flavor", "unknown model flavor 'keras'"),
        (lambda d: d.update(extra=1), "extra", "unknown field"),
        (lambda d: d.update(format_version=99), "format_version", "upgrade mloop"),
        (lambda d: d.update(requirements="numpy"), "requirements", "'requirements'"),
        (lambda d: d.update(created_at=-1), "created_at", "'created_at'"),
        (lambda d: d.update(metadata=[]), "metadata", "'metadata'"),
        (lambda d: d.update(input_example="other.json"), "input_example", "'input_example'"),
        (
            lambda d: d["signature"]["inputs"]["columns"][0].update(type="decimal"),
            "signature",
            "'signature' is invalid.*decimal",
        ),
        (
            lambda d: d["files"]["model.skops"].update(sha256="abc"),
            "files.model.skops",
            "entry 'model.skops'",
        ),
        (
            lambda d: d["files"].update({"../escape": d["files"]["model.skops"]}),
            "files.../escape",
            "not a plain relative path",
        ),
        (
            lambda d: d["files"].update({"/etc/passwd": d["files"]["model.skops"]}),
            "files./etc/passwd",
            "not a plain relative path",
        ),
    ],
)
def test_malformed_manifest_names_the_field(
    package: Path, change: object, field: str, match: str
) -> None:
    _edit(package, change)
    with pytest.raises(InvalidInput, match=match) as err:
        load_model(package)
    assert err.value.details["field"] == field


def test_manifest_that_is_not_json(package: Path) -> None:
    (package / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(InvalidInput, match=r"not valid JSON") as err:
        read_manifest(package)
    assert err.value.details["field"] == MANIFEST_FILE
    (package / MANIFEST_FILE).write_text("[]")
    with pytest.raises(InvalidInput, match=r"must be a JSON object"):
        read_manifest(package)


def test_verify_package_alone(package: Path) -> None:
    assert verify_package(package) == read_manifest(package)


def test_predict_enforces_signature(package: Path, frame: pd.DataFrame) -> None:
    model = load_model(package)
    with pytest.raises(InvalidInput, match=r"missing column.*'score'"):
        model.predict(frame[["amount", "count"]])
    with pytest.raises(InvalidInput, match=r"'label'"):
        model.predict(frame.assign(label=1))
    assert len(model.predict(frame.assign(label=1), extra_columns="drop")) == len(frame)
    with pytest.raises(InvalidInput, match=r"column 'count' must be int64, got str"):
        model.predict(frame.assign(count="many"))
    with pytest.raises(InvalidInput, match=r"empty"):
        model.predict(frame.head(0))
    with pytest.raises(InvalidInput, match=r"4 columns; the signature expects 3"):
        model.predict(np.zeros((2, 4)))


def test_model_errors_are_wrapped_naming_the_model(tmp_path: Path) -> None:
    from mloop.models import PythonModel

    class Fails(PythonModel):
        def predict(self, data: object) -> object:
            raise ZeroDivisionError("nope")

    save_model(Fails(), tmp_path / "p")
    model = load_model(tmp_path / "p", trusted=True)
    with pytest.raises(ModelCallFailed, match=r"pyfunc model .* failed in predict") as err:
        model.predict([{"a": 1}])
    assert isinstance(err.value.__cause__, ZeroDivisionError)


def test_model_without_signature_takes_input_as_is(tmp_path: Path) -> None:
    model = LinearRegression().fit([[1.0], [2.0]], [2.0, 4.0])
    manifest = save_model(model, tmp_path / "p")
    assert manifest.signature is None and manifest.input_example is None
    np.testing.assert_allclose(load_model(tmp_path / "p").predict([[3.0]]), [6.0])


def test_resign_helper_makes_a_consistent_package(package: Path) -> None:
    (package / "requirements.txt").write_text("numpy\n")
    resign(package)
    load_model(package)


def test_tensor_example_with_nan_round_trips(tmp_path: Path) -> None:
    from mloop.models import PythonModel

    class Zeros(PythonModel):
        def predict(self, data: np.ndarray) -> np.ndarray:
            return np.zeros(len(data))

    example = np.array([[1.0, np.nan], [2.0, 3.0]], dtype="float32")
    save_model(Zeros(), tmp_path / "p", input_example=example)
    text = (tmp_path / "p" / "input_example.json").read_text()
    assert "NaN" not in text  # strict JSON
    got = load_model(tmp_path / "p", trusted=True).input_example
    np.testing.assert_array_equal(got, example)
    assert got.dtype == np.float32


def test_corrupted_but_resigned_model_file_is_a_clear_error(package: Path) -> None:
    (package / "model.skops").write_bytes(b"not a zip file")
    resign(package)
    with pytest.raises(InvalidInput, match=r"model.skops is not a readable skops file") as err:
        load_model(package)
    assert err.value.details["field"] == "model.skops"
