"""Lineage of a model version: its run, the code it ran, the dataset versions it read.

Walks recorded rows only (the run, its source tags, its inputs, each dataset version's parents),
so it answers "what made this model" for any version, even one whose run was purged (then
the answer says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mloop.errors import NotFound
from mloop.registry.core import resolve
from mloop.store.base import DatasetVersion, ModelVersion
from mloop.tracking.fluent import client_or_default

if TYPE_CHECKING:
    from rich.tree import Tree

    from mloop.registry.uri import ModelRef
    from mloop.tracking import TrackingClient

__all__ = ["DataNode", "Lineage", "lineage"]

#: Run tags that say which code ran.
CODE_TAGS = (
    "mloop.source.git_commit",
    "mloop.source.git_branch",
    "mloop.source.git_dirty",
    "mloop.source.git_remote",
    "mloop.source.entry_point",
)
#: How deep parent dataset versions are followed.
MAX_DEPTH = 8


@dataclass(frozen=True)
class DataNode:
    """A dataset version in a lineage, with the role it played and its own parents."""

    ref: str
    digest: str
    context: str
    rows: int | None
    files: int | None
    parents: list[DataNode] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "ref": self.ref,
            "digest": self.digest,
            "context": self.context,
            "rows": self.rows,
            "files": self.files,
            "parents": [p.to_dict() for p in self.parents],
        }


@dataclass(frozen=True)
class Lineage:
    """Where a model version came from."""

    version: ModelVersion
    run: dict[str, Any] | None
    code: dict[str, str]
    data: list[DataNode]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        v = self.version
        return {
            "model": v.model,
            "version": v.version,
            "uri": v.uri,
            "package_digest": v.package_digest,
            "flavor": v.flavor,
            "aliases": list(v.aliases),
            "run": self.run,
            "code": self.code,
            "data": [d.to_dict() for d in self.data],
        }

    def tree(self) -> Tree:
        """The lineage as a rich Tree for a terminal."""
        from rich.tree import Tree

        v = self.version
        aliases = f" [{', '.join(v.aliases)}]" if v.aliases else ""
        root = Tree(f"{v.uri}{aliases}  {v.flavor}, package {v.package_digest[:12]}")
        if self.run is None:
            root.add("run: none recorded (registered without a run, or the run was purged)")
        else:
            run = root.add(
                f"run {self.run['id']} ({self.run['name']}, {self.run['status']}) "
                f"in {self.run['experiment']}"
            )
            if self.code:
                commit = self.code.get("mloop.source.git_commit", "")
                dirty = " (dirty)" if self.code.get("mloop.source.git_dirty") == "true" else ""
                entry = self.code.get("mloop.source.entry_point", "")
                run.add(f"code: {commit[:12] or 'no commit'}{dirty} {entry}".rstrip())
            for node in self.data:
                _add_data(run, node)
        return root


def _add_data(parent: Tree, node: DataNode) -> None:
    size = f"{node.rows:,} rows" if node.rows is not None else f"{node.files or 0:,} files"
    branch = parent.add(f"{node.context}: {node.ref} ({size}, {node.digest[:12]})")
    for grand in node.parents:
        _add_data(branch, grand)


def _data_node(
    client: TrackingClient, version: DatasetVersion, context: str, depth: int
) -> DataNode:
    parents: list[DataNode] = []
    if depth < MAX_DEPTH:
        for ref in version.parents:
            name, _, number = ref.partition("@v")
            try:
                parent = client.store.get_dataset_version(name, int(number), with_profile=False)
            except (NotFound, ValueError):
                continue
            parents.append(_data_node(client, parent, "parent", depth + 1))
    return DataNode(
        version.ref, version.digest, context, version.num_rows, version.num_files, parents
    )


def lineage(uri: str | ModelRef | ModelVersion, *, client: TrackingClient | None = None) -> Lineage:
    """Where a version came from: its run, the code (git) and the data versions it read."""
    client = client_or_default(client)
    version = resolve(uri, client=client)
    if version.run_id is None:
        return Lineage(version, None, {}, [])
    try:
        run = client.store.get_run(version.run_id)
    except NotFound:
        return Lineage(version, None, {}, [])
    experiment = client.store.get_experiment(run.experiment_id).name
    data = [
        _data_node(client, item.version, item.context, 0)
        for item in client.store.list_run_inputs(run.id)
    ]
    if not data and run.parent_id:  # a child run: its parent usually logged the inputs
        data = [
            _data_node(client, item.version, item.context, 0)
            for item in client.store.list_run_inputs(run.parent_id)
        ]
    return Lineage(
        version,
        {
            "id": run.id,
            "name": run.name,
            "status": run.status.value,
            "experiment": experiment,
            "parent_id": run.parent_id,
            "params": run.params,
            "metrics": run.metrics,
        },
        {k: run.tags[k] for k in CODE_TAGS if k in run.tags},
        data,
    )
