"""Save a model as a package folder, read its manifest, verify it and load it.

Layout of a package folder::

    mloop-model.json      the manifest (flavor, versions, signature, digests of every file)
    model.<ext>           the flavor's files (model.skops, model.xgb.json, model.lgb.txt, ...)
    input_example.json    the input example, when one was given
    requirements.txt      pinned requirements of the flavor

Saving writes into a fresh sibling folder and renames it into place, so a failed save leaves
nothing behind. Loading reads the manifest, checks that the folder holds exactly the files it
lists (no symlinks, no extra or missing file) with the recorded sizes and SHA-256 digests, and
only then hands the folder to the flavor, which refuses pickle-based formats unless
``trusted=True``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from mloop.errors import AlreadyExists, DigestMismatch, IntegrityError, InvalidInput, NotFound
from mloop.models.coerce import coerce_input, to_frame_or_array
from mloop.models.flavors.base import Flavor, detect_flavor, get_flavor
from mloop.models.loaded import LoadedModel
from mloop.models.manifest import MANIFEST_FILE, FileDigest, PackageManifest, check_file_name
from mloop.models.signature import Signature, TensorSpec, infer_signature

__all__ = [
    "INPUT_EXAMPLE_FILE",
    "MAX_MANIFEST_BYTES",
    "REQUIREMENTS_FILE",
    "load_model",
    "read_manifest",
    "save_model",
    "verify_package",
]

INPUT_EXAMPLE_FILE = "input_example.json"
REQUIREMENTS_FILE = "requirements.txt"
MAX_MANIFEST_BYTES = 16 << 20
"""A manifest larger than this is refused before it is parsed."""


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    flavor: str | None = None,
    input_example: Any = None,
    signature: Signature | None = None,
    requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    trusted_types: list[str] | None = None,
) -> PackageManifest:
    """Package ``model`` into a new folder at ``path`` and return its manifest.

    The flavor is detected from the model's class unless given. The signature is inferred from
    ``input_example`` unless given (outputs from calling the model on the example). ``path``
    must not exist or be an empty folder.
    """
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AlreadyExists(
            f"cannot save a model to {target}: it already exists and is not an empty folder; "
            "choose a new path",
            field="path",
        )
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a dict", field="metadata")
    _check_json(metadata or {}, "metadata")
    if requirements is not None and (
        not isinstance(requirements, list)
        or not all(isinstance(r, str) and r.strip() and "\n" not in r for r in requirements)
    ):
        raise InvalidInput(
            "requirements must be a list of requirement strings, one per item",
            field="requirements",
        )
    if trusted_types is not None and (
        not isinstance(trusted_types, list) or not all(isinstance(t, str) for t in trusted_types)
    ):
        raise InvalidInput("trusted_types must be a list of type names", field="trusted_types")
    if signature is not None and not isinstance(signature, Signature):
        raise InvalidInput("signature must be a mloop.models.Signature", field="signature")
    flavor_name = flavor or detect_flavor(model)
    impl = get_flavor(flavor_name)

    example_frame: Any = None
    if input_example is not None:
        example_frame = to_frame_or_array(input_example, what="input example")
        if signature is None:
            signature = infer_signature(example_frame)
        # The example must satisfy the signature it is stored with.
        example_frame = coerce_input(example_frame, signature)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.saving-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        config = impl.save(model, staging, trusted_types=list(trusted_types or []))
        if example_frame is not None and signature is not None and signature.outputs is None:
            signature = _with_outputs(impl.wrap(model, config), example_frame, signature)
        example_name = None
        if example_frame is not None:
            example_name = INPUT_EXAMPLE_FILE
            (staging / example_name).write_text(_example_json(example_frame), encoding="utf-8")
        flavor_version, pinned = _library_versions(flavor_name, impl)
        reqs = list(requirements) if requirements is not None else pinned
        (staging / REQUIREMENTS_FILE).write_text("".join(f"{r}\n" for r in reqs), encoding="utf-8")
        from mloop import __version__

        manifest = PackageManifest(
            flavor=flavor_name,
            flavor_version=flavor_version,
            mloop_version=__version__,
            python_version=platform.python_version(),
            signature=signature,
            input_example=example_name,
            requirements=reqs,
            files=_digest_folder(staging),
            metadata=dict(metadata or {}),
            created_at=int(time.time() * 1000),
            flavor_config=config,
        )
        (staging / MANIFEST_FILE).write_text(manifest.to_json() + "\n", encoding="utf-8")
        try:
            if target.exists():
                target.rmdir()  # empty, checked above
            staging.rename(target)
        except OSError as exc:  # another writer got there first
            raise AlreadyExists(
                f"cannot save a model to {target}: it was created while saving ({exc}); "
                "choose a new path",
                field="path",
            ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


#: flavor name → (library version, pinned requirements), looked up once per process: reading
#: installed distributions' metadata costs milliseconds, and a library upgraded after it was
#: imported would not be the one that saved the model anyway.
_VERSIONS: dict[str, tuple[str, tuple[str, ...]]] = {}


def _library_versions(name: str, impl: Flavor) -> tuple[str, list[str]]:
    found = _VERSIONS.get(name)
    if found is None:
        found = _VERSIONS[name] = (impl.version(), tuple(impl.requirements()))
    return found[0], list(found[1])


def read_manifest(path: str | os.PathLike[str]) -> PackageManifest:
    """Read and validate the manifest of the package folder at ``path`` (no digest check)."""
    folder = Path(path)
    if not folder.is_dir():
        raise NotFound(f"no packaged model at {folder}: not a folder", field="path")
    file = folder / MANIFEST_FILE
    if file.is_symlink() or not file.is_file():
        raise NotFound(
            f"{folder} is not a packaged model: it has no {MANIFEST_FILE}", field=MANIFEST_FILE
        )
    if file.stat().st_size > MAX_MANIFEST_BYTES:
        raise InvalidInput(
            f"{MANIFEST_FILE} in {folder} is larger than {MAX_MANIFEST_BYTES} bytes",
            field=MANIFEST_FILE,
        )
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(
            f"{MANIFEST_FILE} in {folder} is not valid JSON: {exc}", field=MANIFEST_FILE
        ) from None
    return PackageManifest.from_dict(data)


def verify_package(
    path: str | os.PathLike[str], *, expected_digest: str | None = None
) -> PackageManifest:
    """Check that the folder holds exactly the manifest's files, each with its size and digest.

    Raises DigestMismatch naming the first file whose bytes changed (or the manifest, when
    ``expected_digest`` is given and differs), IntegrityError for a missing, extra or
    symlinked file.
    """
    from mloop.artifacts.cas import hash_file

    folder = Path(path)
    manifest = read_manifest(folder)
    if expected_digest is not None and manifest.digest != expected_digest:
        raise DigestMismatch(
            f"{MANIFEST_FILE} in {folder} has digest {manifest.digest}, expected "
            f"{expected_digest}: the package was edited or is not the one recorded",
            field=MANIFEST_FILE,
        )
    present = _list_files(folder)
    missing = sorted(set(manifest.files) - set(present))
    if missing:
        raise IntegrityError(
            f"packaged model at {folder} is missing file(s) its manifest lists: "
            f"{', '.join(missing)}; the package is incomplete — save it again",
            field=missing[0],
        )
    extra = sorted(set(present) - set(manifest.files))
    if extra:
        raise IntegrityError(
            f"packaged model at {folder} holds file(s) its manifest does not list: "
            f"{', '.join(extra)}; remove them or save the model again",
            field=extra[0],
        )
    for name, expected in sorted(manifest.files.items()):
        file = folder / name
        size = file.stat().st_size
        if size != expected.size:
            raise DigestMismatch(
                f"file '{name}' of the packaged model at {folder} has {size} bytes, the "
                f"manifest says {expected.size}: it was modified after saving",
                field=name,
            )
        actual = hash_file(file).digest
        if actual != expected.sha256:
            raise DigestMismatch(
                f"file '{name}' of the packaged model at {folder} has sha256 {actual}, the "
                f"manifest says {expected.sha256}: it was modified after saving",
                field=name,
            )
    return manifest


def load_model(
    path: str | os.PathLike[str], *, trusted: bool = False, expected_digest: str | None = None
) -> LoadedModel:
    """Verify every file of the package at ``path``, then load it with its flavor.

    Pickle-based flavors (pyfunc) and skops files with undeclared types load only with
    ``trusted=True``. ``expected_digest`` (the manifest digest a registry recorded) also pins
    the manifest itself.
    """
    folder = Path(path)
    manifest = verify_package(folder, expected_digest=expected_digest)
    impl = get_flavor(manifest.flavor)
    predictor = impl.load(folder, dict(manifest.flavor_config), trusted=trusted)
    return LoadedModel(manifest=manifest, predictor=predictor, path=folder)


def _list_files(folder: Path) -> list[str]:
    names: list[str] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        base = Path(root)
        for d in dirs:
            if (base / d).is_symlink():
                rel = (base / d).relative_to(folder).as_posix()
                raise IntegrityError(
                    f"packaged model at {folder} holds a symlink '{rel}'; packages hold plain "
                    "files only",
                    field=rel,
                )
        for f in files:
            rel = (base / f).relative_to(folder).as_posix()
            if rel == MANIFEST_FILE:
                continue
            if (base / f).is_symlink() or not (base / f).is_file():
                raise IntegrityError(
                    f"packaged model at {folder} holds '{rel}', which is not a plain file; "
                    "packages hold plain files only",
                    field=rel,
                )
            names.append(rel)
    return sorted(names)


def _digest_folder(folder: Path) -> dict[str, FileDigest]:
    from mloop.artifacts.cas import hash_file

    out: dict[str, FileDigest] = {}
    for name in _list_files(folder):
        check_file_name(name)
        ref = hash_file(folder / name)
        out[name] = FileDigest(sha256=ref.digest, size=ref.size)
    return out


def _with_outputs(predictor: Any, example: Any, signature: Signature) -> Signature:
    try:
        output = predictor.predict(example)
    except Exception as exc:
        raise InvalidInput(
            f"the model failed on its own input example ({type(exc).__name__}: {exc}); "
            "check the example, or pass signature= with the inputs the model takes",
            field="input_example",
        ) from exc
    try:
        outputs = infer_signature(output).inputs
    except InvalidInput:
        return signature  # an output a signature cannot describe is simply not recorded
    return Signature(inputs=signature.inputs, outputs=outputs)


def _example_json(data: Any) -> str:
    """The example as JSON: ``{"columns": [...], "data": [[...]]}`` or a tensor."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        text: str = data.to_json(orient="split", index=False, date_format="iso")
        body = json.loads(text)
        return json.dumps({"columns": body["columns"], "data": body["data"]}, allow_nan=False)
    arr = np.asarray(data)
    # NaN is not JSON: write null, which np.asarray(..., dtype=float) reads back as NaN.
    if arr.dtype.kind == "f":
        values = arr.astype(object)
        values[np.isnan(arr)] = None
        listed = values.tolist()
    else:
        listed = arr.tolist()
    body = {"tensor": {"dtype": arr.dtype.name, "shape": list(arr.shape), "data": listed}}
    return json.dumps(body, allow_nan=False)


def read_input_example(folder: Path, name: str, signature: Signature | None) -> Any:
    """Read an input example written by :func:`save_model`, typed by the signature."""
    import pandas as pd

    try:
        body = json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{name} is not a readable input example: {exc}", field=name) from None
    if isinstance(body, dict) and "tensor" in body:
        spec = body["tensor"]
        return np.asarray(spec["data"], dtype=spec["dtype"]).reshape(spec["shape"])
    if not isinstance(body, dict) or set(body) != {"columns", "data"}:
        raise InvalidInput(f"{name} is not a readable input example", field=name)
    frame = pd.DataFrame(body["data"], columns=body["columns"])
    if signature is not None and not isinstance(signature.inputs, TensorSpec):
        frame = coerce_input(frame, signature)
    return frame


def _check_json(value: Any, label: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{label} must be JSON-serialisable: {exc}", field=label) from None
