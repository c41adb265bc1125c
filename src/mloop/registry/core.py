"""The model registry: register packaged models, resolve URIs, load, aliases with policies.

A version's files live in the artifact store under ``package/`` (recorded as the version's
artifact references); loading materialises them once per package digest under
``MLOOP_HOME/cache/models`` and then :func:`mloop.models.load_model` checks every digest again.
Moving an alias obeys the alias's policy (approvals and a passing gate decision); rollback moves
it back to where it was before its last move. Every change is an audit event (in the store).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import DigestMismatch, Forbidden, InvalidInput, InvalidState, NotFound
from mloop.registry.uri import ModelRef, parse_model_uri
from mloop.store.base import (
    AliasChange,
    ModelRecord,
    ModelVersion,
    ModelVersionStatus,
    NewModelVersion,
    RegisteredModel,
)
from mloop.store.registry import OWNER_KIND, check_alias, check_model_name
from mloop.tracking.fluent import client_or_default, run_id_of

if TYPE_CHECKING:
    from mloop.models import LoadedModel, PackageManifest
    from mloop.tracking import TrackingClient

__all__ = [
    "PACKAGE_PREFIX",
    "ROLLBACK",
    "approve",
    "delete_version",
    "download",
    "get_policy",
    "list_models",
    "list_versions",
    "load",
    "log_model",
    "read_package_manifest",
    "register",
    "resolve",
    "rollback",
    "set_alias",
    "set_policy",
]

#: Where a version's package files sit among its artifact references.
PACKAGE_PREFIX = "package/"
#: How the reason of an alias move made by :func:`rollback` starts.
ROLLBACK = "rollback"


# -- registering --------------------------------------------------------------------------------


def register(
    path: str | os.PathLike[str],
    name: str,
    *,
    run: object = None,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    client: TrackingClient | None = None,
) -> ModelVersion:
    """Register a packaged model folder (made by :func:`mloop.models.save_model`) as the next
    version of ``name``. Every file is checked against the manifest before anything is stored."""
    from mloop.artifacts.cas import hash_file
    from mloop.models import MANIFEST_FILE, verify_package

    check_model_name(name)
    client = client_or_default(client)
    folder = Path(path)
    manifest = verify_package(folder)
    # The files were just hashed against the manifest: store them under those digests (each
    # copy is hashed again as it lands, so a file changed since is refused), hashing only the
    # manifest file itself.
    manifest_file = folder / MANIFEST_FILE
    own = hash_file(manifest_file)
    files = [(MANIFEST_FILE, own.digest, own.size)]
    files += [(n, manifest.files[n].sha256, manifest.files[n].size) for n in sorted(manifest.files)]
    client.artifacts.put_known([(digest, folder.joinpath(*n.split("/"))) for n, digest, _ in files])
    return _create_version(client, manifest, files, name, run_id_of(run), description, tags)


def _create_version(  # noqa: PLR0917
    client: TrackingClient,
    manifest: PackageManifest,
    files: Sequence[tuple[str, str, int]],
    name: str,
    run_id: str | None,
    description: str,
    tags: Mapping[str, str] | None,
) -> ModelVersion:
    """Record a version whose package files (name, digest, size) are already stored."""
    new = NewModelVersion(
        package_digest=manifest.digest,
        flavor=manifest.flavor,
        files=[(PACKAGE_PREFIX + n, digest, size) for n, digest, size in files],
        signature=None if manifest.signature is None else manifest.signature.to_dict(),
        run_id=run_id,
        description=description,
        tags={str(k): str(v) for k, v in (tags or {}).items()},
    )
    return client.store.create_model_version(name, new, actor=client.settings.actor)


def log_model(
    run: object,
    model: Any,
    name: str,
    *,
    input_example: Any = None,
    signature: Any = None,
    flavor: str | None = None,
    requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    trusted_types: list[str] | None = None,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    client: TrackingClient | None = None,
) -> ModelVersion:
    """Package ``model``, keep it as artifacts of ``run`` (under ``models/<name>/``) and register
    it as the next version of ``name`` with the run as its source."""
    from mloop.models import MANIFEST_FILE, save_model

    check_model_name(name)
    client = client_or_default(client)
    run_id = run_id_of(run)
    if run_id is None:
        raise InvalidInput("log_model needs the run the model comes from")
    with tempfile.TemporaryDirectory(prefix="mloop-model-") as scratch:
        folder = Path(scratch) / "model"
        manifest = save_model(
            model,
            folder,
            flavor=flavor,
            input_example=input_example,
            signature=signature,
            requirements=requirements,
            metadata=metadata,
            trusted_types=trusted_types,
        )
        prefix = f"models/{name}"
        entries = client.log_artifacts(run_id, folder, prefix)
    # The run's artifacts are the package's blobs, already stored and hashed: the version
    # records the same blobs, once each digest is checked against the manifest just written.
    files = [(e.path[len(prefix) + 1 :], e.digest, e.size) for e in entries]
    for rel, digest, size in files:
        expected = manifest.files.get(rel)
        if rel != MANIFEST_FILE and (
            expected is None or (expected.sha256, expected.size) != (digest, size)
        ):
            raise DigestMismatch(
                f"file '{rel}' of the model packaged for {name!r} changed while it was stored; "
                "log the model again",
                field=rel,
            )
    if {rel for rel, _, _ in files} != {MANIFEST_FILE, *manifest.files}:
        raise DigestMismatch(
            f"the files stored for the model packaged for {name!r} are not those of its "
            "manifest; log the model again",
            field=MANIFEST_FILE,
        )
    return _create_version(client, manifest, files, name, run_id, description, tags)


# -- resolving and loading ----------------------------------------------------------------------


def resolve(
    uri: str | ModelRef | ModelVersion, *, client: TrackingClient | None = None
) -> ModelVersion:
    """The version a URI names: ``models:/name/N``, ``models:/name@alias``, ``models:/name``
    (the newest ready version). Raises InvalidInput, NotFound."""
    if isinstance(uri, ModelVersion):
        return uri
    ref = uri if isinstance(uri, ModelRef) else parse_model_uri(uri)
    store = client_or_default(client).store
    return store.resolve_model_version(ref.name, version=ref.version, alias=ref.alias)


def _package_files(client: TrackingClient, version: ModelVersion) -> list[tuple[str, str]]:
    entries = client.store.list_artifacts(OWNER_KIND, str(version.id), PACKAGE_PREFIX)
    if not entries:
        raise NotFound(f"{version.uri} has no package files recorded")
    return [(e.path[len(PACKAGE_PREFIX) :], e.digest) for e in entries]


def download(
    uri: str | ModelRef | ModelVersion,
    dest: str | os.PathLike[str],
    *,
    client: TrackingClient | None = None,
) -> Path:
    """Write a version's package folder at ``dest`` (missing or empty), every file verified."""
    client = client_or_default(client)
    version = resolve(uri, client=client)
    target = Path(dest)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidState(f"{target} exists and is not an empty folder; choose another place")
    items = [
        (digest, target.joinpath(*rel.split("/")))
        for rel, digest in _package_files(client, version)
    ]
    client.artifacts.download_many(items)
    return target


def _cached_package(client: TrackingClient, version: ModelVersion) -> Path:
    """The version's package folder in the local cache, materialised on first use."""
    cache = client.settings.home_path / "cache" / "models"
    folder = cache / version.package_digest
    if folder.is_dir():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    staging = cache / f".{version.package_digest}.{uuid.uuid4().hex[:8]}.part"
    try:
        download(version, staging, client=client)
        try:
            os.rename(staging, folder)
        except OSError:
            if not folder.is_dir():  # not another process winning the race
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    return folder


def load(
    uri: str | ModelRef | ModelVersion,
    *,
    trusted: bool = False,
    client: TrackingClient | None = None,
) -> LoadedModel:
    """Load a registered version. Every file is checked against its digest first; formats
    that unpickle load only with ``trusted=True``."""
    from mloop.models import load_model

    client = client_or_default(client)
    version = resolve(uri, client=client)
    if version.status != ModelVersionStatus.READY:
        raise InvalidState(f"{version.uri} is deleted; load another version")
    folder = _cached_package(client, version)
    try:
        return load_model(folder, trusted=trusted)
    except DigestMismatch:
        # The local copy was altered after it was verified: drop it and fetch the stored blobs
        # again (verified on download); if they are damaged too, that error propagates.
        shutil.rmtree(folder, ignore_errors=True)
        return load_model(_cached_package(client, version), trusted=trusted)


def read_package_manifest(
    uri: str | ModelRef | ModelVersion, *, client: TrackingClient | None = None
) -> PackageManifest:
    """The package manifest of a registered version (verified)."""
    from mloop.models import MANIFEST_FILE, PackageManifest

    client = client_or_default(client)
    version = resolve(uri, client=client)
    digest = dict(_package_files(client, version))[MANIFEST_FILE]
    import json

    return PackageManifest.from_dict(json.loads(client.artifacts.get_bytes(digest)))


def list_models(*, client: TrackingClient | None = None) -> list[RegisteredModel]:
    """Every registered model."""
    return client_or_default(client).store.list_registered_models()


def list_versions(name: str, *, client: TrackingClient | None = None) -> list[ModelVersion]:
    """The versions of a model, oldest first."""
    return client_or_default(client).store.list_model_versions(check_model_name(name))


def delete_version(
    name: str, version: int, *, client: TrackingClient | None = None
) -> ModelVersion:
    """Mark a version deleted (refused while an alias points at it)."""
    client = client_or_default(client)
    return client.store.delete_model_version(name, version, actor=client.settings.actor)


# -- governance ---------------------------------------------------------------------------------


def approve(
    name: str,
    version: int,
    *,
    by: str,
    note: str = "",
    alias: str = "*",
    client: TrackingClient | None = None,
) -> ModelRecord:
    """Record that ``by`` approves a version (for one alias, or ``*``: any)."""
    client = client_or_default(client)
    if not isinstance(by, str) or not by.strip():
        raise InvalidInput("an approval names who approves (by=…)")
    if alias != "*":
        check_alias(alias)
    return client.store.add_model_record(
        name,
        version,
        kind="approval",
        subject=alias,
        passed=True,
        body={"by": by.strip(), "note": note},
        actor=client.settings.actor,
    )


def set_policy(
    name: str,
    alias: str,
    *,
    approvals: int = 0,
    approvers: Sequence[str] = (),
    gate: bool = False,
    client: TrackingClient | None = None,
) -> dict[str, Any] | None:
    """Set what moving ``alias`` requires: ``approvals`` distinct approvers (from
    ``approvers`` when given) and, with ``gate``, a passing gate decision recorded for the
    alias. All zero/empty removes the policy. Returns the policy."""
    client = client_or_default(client)
    if not isinstance(approvals, int) or approvals < 0:
        raise InvalidInput(f"approvals must be an integer ≥ 0, got {approvals!r}")
    policy: dict[str, Any] | None = {
        "approvals": approvals,
        "approvers": sorted({str(a) for a in approvers}),
        "gate": bool(gate),
    }
    if not approvals and not gate:
        policy = None
    client.store.set_alias_policy(name, alias, policy, actor=client.settings.actor)
    return policy


def get_policy(
    name: str, alias: str, *, client: TrackingClient | None = None
) -> dict[str, Any] | None:
    """The policy of an alias, or None."""
    return client_or_default(client).store.get_alias_policy(name, alias)


def _policy_problems(
    policy: Mapping[str, Any], records: Sequence[ModelRecord], name: str, alias: str, version: int
) -> list[str]:
    problems: list[str] = []
    needed = int(policy.get("approvals", 0))
    if needed:
        allowed = set(policy.get("approvers") or [])
        approvers = {
            r.body.get("by")
            for r in records
            if r.kind == "approval" and r.subject in (alias, "*")
            and (not allowed or r.body.get("by") in allowed)
        }  # fmt: skip
        if len(approvers) < needed:
            who = f" from {', '.join(sorted(allowed))}" if allowed else ""
            problems.append(
                f"needs {needed} approval(s){who}, has {len(approvers)} "
                f"(mloop models approve {name} {version} --by NAME)"
            )
    if policy.get("gate"):
        gates = [r for r in records if r.kind == "gate" and r.subject == alias]
        if not gates:
            problems.append(f"needs a passing gate decision for {alias!r}; none is recorded")
        elif not gates[-1].passed:
            reasons = "; ".join(gates[-1].body.get("reasons", [])) or "see the decision"
            problems.append(f"its last gate decision for {alias!r} failed: {reasons}")
    return problems


def set_alias(
    name: str,
    alias: str,
    version: int,
    *,
    reason: str = "",
    client: TrackingClient | None = None,
) -> AliasChange:
    """Point ``alias`` at ``version``; refused (Forbidden) unless the alias's policy holds."""
    client = client_or_default(client)
    check_alias(alias)

    def check(policy: dict[str, Any], records: list[ModelRecord]) -> None:
        # Runs in the store's write transaction: the policy and records it sees are the ones
        # in force when the alias moves.
        problems = _policy_problems(policy, records, name, alias, version)
        if problems:
            raise Forbidden(
                f"cannot move {name}@{alias} to version {version}: " + "; ".join(problems),
                problems=problems,
            )

    text = reason or "promoted"
    if text.startswith(ROLLBACK):  # only rollback() writes that marker (it reads it back)
        text = f"promoted: {text}"
    return client.store.set_model_alias(
        name, alias, version, reason=text, actor=client.settings.actor, check=check
    )


def rollback(
    name: str, alias: str = "champion", *, reason: str = "", client: TrackingClient | None = None
) -> AliasChange:
    """Move ``alias`` back to the newest version it pointed at before the current one, skipping
    versions it was rolled back from and deleted ones, so repeated rollbacks keep going back.
    No policy check: going back is always allowed. Raises InvalidState when there is nothing
    to go back to."""
    client = client_or_default(client)
    check_alias(alias)
    history = client.store.list_alias_history(name, alias)
    current = history[-1].version if history else None
    left = {c.previous for c in history if c.reason.startswith(ROLLBACK)}
    for change in reversed(history):
        candidate = change.previous
        if candidate is None or candidate == current or candidate in left:
            continue
        try:
            target = client.store.get_model_version(name, candidate)
        except NotFound:
            continue
        if target.status == ModelVersionStatus.READY:
            text = f"{ROLLBACK}: {reason}" if reason else ROLLBACK
            return client.store.set_model_alias(
                name, alias, candidate, reason=text, actor=client.settings.actor
            )
    raise InvalidState(f"{name}@{alias} has no earlier version to roll back to")
