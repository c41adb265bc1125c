"""The registry over a real store and artifact store: log, resolve, load, aliases, policies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mloop import registry
from mloop.errors import DigestMismatch, Forbidden, InvalidInput, InvalidState, NotFound
from mloop.registry import ModelRef, parse_model_uri
from mloop.tracking import TrackingClient


@pytest.fixture
def frame() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"amount": rng.normal(size=200), "age": rng.normal(size=200)})
    return x, (x["amount"] + 0.1 * rng.normal(size=200) > 0).astype(int)


def logged(client: TrackingClient, frame: tuple[pd.DataFrame, pd.Series], c: float = 1.0) -> int:
    x, y = frame
    with client.start_run(experiment="fraud") as run:
        version = run.log_model(LogisticRegression(C=c).fit(x, y), "fraud", input_example=x[:5])
    return version.version


def test_log_model_resolve_and_load(client: TrackingClient, frame: tuple) -> None:
    x, _ = frame
    assert logged(client, frame) == 1
    assert logged(client, frame, c=0.1) == 2
    v1 = registry.resolve("models:/fraud/1", client=client)
    assert v1.flavor == "sklearn" and v1.run_id is not None
    assert registry.resolve("models:/fraud", client=client).version == 2
    assert registry.resolve("fraud/1", client=client).id == v1.id
    run_files = [e.path for e in client.list_artifacts(v1.run_id, "models/fraud")]
    assert "models/fraud/mloop-model.json" in run_files
    model = registry.load("models:/fraud/1", client=client)
    assert model.predict(x[:4]).shape == (4,)
    manifest = registry.read_package_manifest("models:/fraud/1", client=client)
    assert manifest.digest == v1.package_digest


def test_aliases_policies_and_rollback(client: TrackingClient, frame: tuple) -> None:
    for c in (1.0, 0.5, 0.1):
        logged(client, frame, c)
    registry.set_alias("fraud", "champion", 1, client=client)
    assert registry.resolve("models:/fraud@champion", client=client).version == 1
    registry.set_policy("fraud", "champion", approvals=1, approvers=["risk-team"], gate=True,
                        client=client)  # fmt: skip
    with pytest.raises(Forbidden, match="approval") as refused:
        registry.set_alias("fraud", "champion", 2, client=client)
    assert "gate" in str(refused.value)
    registry.approve("fraud", 2, by="someone-else", client=client)
    registry.approve("fraud", 2, by="risk-team", note="reviewed", client=client)
    client.store.add_model_record("fraud", 2, kind="gate", subject="champion", passed=False,
                                  body={"reasons": ["roc_auc too low"]}, actor="t")  # fmt: skip
    with pytest.raises(Forbidden, match="roc_auc too low"):
        registry.set_alias("fraud", "champion", 2, client=client)
    client.store.add_model_record("fraud", 2, kind="gate", subject="champion", passed=True,
                                  body={}, actor="t")  # fmt: skip
    registry.set_alias("fraud", "champion", 2, reason="better", client=client)
    assert registry.resolve("models:/fraud@champion", client=client).version == 2
    back = registry.rollback("fraud", "champion", reason="alerts", client=client)
    assert (back.version, back.previous) == (1, 2)
    assert back.reason == "rollback: alerts"
    with pytest.raises(InvalidState, match="no earlier version"):
        registry.rollback("fraud", "champion", client=client)
    with pytest.raises(InvalidState, match="champion"):
        registry.delete_version("fraud", 1, client=client)
    registry.delete_version("fraud", 3, client=client)
    with pytest.raises(InvalidState, match="deleted"):
        registry.load("models:/fraud/3", client=client)


def test_a_tampered_cache_is_fetched_again_and_a_tampered_blob_refused(
    client: TrackingClient, frame: tuple
) -> None:
    logged(client, frame)
    version = registry.resolve("models:/fraud/1", client=client)
    registry.load(version, client=client)
    cached = client.settings.home_path / "cache" / "models" / version.package_digest
    target = next(p for p in cached.iterdir() if p.name != "mloop-model.json" and p.is_file())
    target.write_bytes(b"tampered" + target.read_bytes())
    registry.load(version, client=client)  # healed from the verified store
    entries = client.store.list_artifacts("model_version", str(version.id), "package/")
    blob = next(e for e in entries if not e.path.endswith("mloop-model.json"))
    stored = client.artifacts.blobs.root / blob.digest[:2] / blob.digest  # type: ignore[attr-defined]
    stored.write_bytes(b"x" + stored.read_bytes())
    import shutil

    shutil.rmtree(cached)
    with pytest.raises(DigestMismatch):
        registry.load(version, client=client)


@pytest.mark.parametrize(
    ("uri", "ref"),
    [
        ("models:/fraud/3", ModelRef("fraud", version=3)),
        ("models:/fraud@champion", ModelRef("fraud", alias="champion")),
        ("models:/fraud", ModelRef("fraud")),
        ("models:/fraud/latest", ModelRef("fraud")),
        ("fraud@challenger", ModelRef("fraud", alias="challenger")),
    ],
)
def test_parse_model_uri(uri: str, ref: ModelRef) -> None:
    assert parse_model_uri(uri) == ref


@pytest.mark.parametrize(
    "uri",
    ["", "runs:/abc/model", "models:/", "models:/fraud/0", "models:/fraud@1x!", "models:/a/b/c"],
)
def test_bad_model_uris(uri: str) -> None:
    with pytest.raises(InvalidInput):
        parse_model_uri(uri)


def test_missing_things_are_not_found(client: TrackingClient, frame: tuple) -> None:
    with pytest.raises(NotFound, match="no registered model"):
        registry.resolve("models:/nope@champion", client=client)
    logged(client, frame)
    with pytest.raises(NotFound, match="no alias 'champion'"):
        registry.resolve("models:/fraud@champion", client=client)
    with pytest.raises(NotFound, match="no version 9"):
        registry.set_alias("fraud", "champion", 9, client=client)


def test_register_refuses_a_tampered_folder(
    client: TrackingClient, frame: tuple, tmp_path: Path
) -> None:
    from mloop.models import save_model

    x, y = frame
    folder = tmp_path / "pkg"
    save_model(LogisticRegression().fit(x, y), folder, input_example=x[:3])
    victim = next(p for p in folder.iterdir() if p.name != "mloop-model.json" and p.is_file())
    victim.write_bytes(victim.read_bytes() + b"!")
    with pytest.raises(DigestMismatch):
        registry.register(folder, "fraud", client=client)
    assert registry.list_models(client=client) == []


def test_log_model_stores_the_package_once(
    client: TrackingClient, frame: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mloop.artifacts.cas import ContentAddressedStore

    calls: list[str] = []
    for method in ("put_files", "put_known"):
        real = getattr(ContentAddressedStore, method)

        def spy(self: ContentAddressedStore, items: list, _real=real, _name=method) -> object:
            calls.append(_name)
            return _real(self, items)

        monkeypatch.setattr(ContentAddressedStore, method, spy)
    logged(client, frame)
    assert calls == ["put_files"]  # the run's artifacts; the version reuses their blobs
    version = registry.resolve("models:/fraud/1", client=client)
    assert version.run_id is not None
    run_files = {
        e.path.removeprefix("models/fraud/"): e.digest
        for e in client.list_artifacts(version.run_id, "models/fraud")
    }
    package = {
        e.path.removeprefix("package/"): e.digest
        for e in client.store.list_artifacts("model_version", str(version.id), "package/")
    }
    assert package == run_files and "mloop-model.json" in package
    assert registry.read_package_manifest(version, client=client).digest == version.package_digest


def test_register_stores_the_verified_digests(
    client: TrackingClient, frame: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mloop.models
    from mloop.errors import Conflict
    from mloop.models import save_model

    x, y = frame
    folder = tmp_path / "pkg"
    manifest = save_model(LogisticRegression().fit(x, y), folder, input_example=x[:3])
    version = registry.register(folder, "fraud", client=client)
    stored = {
        e.path.removeprefix("package/"): e.digest
        for e in client.store.list_artifacts("model_version", str(version.id), "package/")
    }
    assert {n: stored[n] for n in manifest.files} == {
        n: f.sha256 for n, f in manifest.files.items()
    }
    assert version.package_digest == manifest.digest

    # A file changed after the check is refused as it is copied, and nothing is registered
    # (an unchanged blob already stored is not copied again: it has the checked digest).
    other = tmp_path / "other"
    save_model(LogisticRegression(C=0.3).fit(x, y), other, input_example=x[:3])
    real = mloop.models.verify_package

    def verify_then_tamper(path: Path) -> object:
        checked = real(path)
        victim = next(p for p in other.iterdir() if p.name.startswith("model."))
        victim.write_bytes(victim.read_bytes() + b"!")  # a blob not stored yet
        return checked

    monkeypatch.setattr(mloop.models, "verify_package", verify_then_tamper)
    with pytest.raises(Conflict, match="changed after it was hashed"):
        registry.register(other, "fraud", client=client)
    assert [v.version for v in registry.list_versions("fraud", client=client)] == [1]


def test_models_load_takes_a_uri_or_a_folder(client: TrackingClient, frame: tuple) -> None:
    import mloop

    x, _ = frame
    logged(client, frame)
    by_uri = mloop.models.load("models:/fraud/1", client=client)
    folder = registry.download("models:/fraud/1", client.settings.home_path / "copy", client=client)
    by_path = mloop.models.load(folder)
    assert (by_uri.predict(x[:5]) == by_path.predict(x[:5])).all()
