"""Model cards, generated from what is recorded: never typed by hand, so never stale.

A card holds the intended use and limitations (fields set with :func:`set_card_fields`, kept as
the registered model's ``card.*`` tags), the version's package and signature, its lineage (run,
code, dataset versions), its newest evaluation (metrics, slices, fairness), the gate decisions,
approvals and alias history. Markdown for a repository, HTML (self-contained) for a browser.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mloop.registry.core import resolve
from mloop.registry.lineage import DataNode, Lineage, lineage
from mloop.store.base import AliasChange, ModelRecord, ModelVersion, RegisteredModel
from mloop.tracking.fluent import client_or_default

if TYPE_CHECKING:
    from mloop.registry.uri import ModelRef
    from mloop.tracking import TrackingClient

__all__ = ["CARD_FIELDS", "ModelCard", "model_card", "set_card_fields"]

#: The hand-written fields of a card, kept as registered-model tags ``card.<field>``.
CARD_FIELDS = ("intended_use", "limitations", "owner")
NOT_STATED = "not stated (set it with mloop.registry.set_card_fields)"


def set_card_fields(
    name: str,
    *,
    intended_use: str | None = None,
    limitations: str | None = None,
    owner: str | None = None,
    client: TrackingClient | None = None,
) -> RegisteredModel:
    """Set the hand-written fields of a model's cards (the rest is generated)."""
    client = client_or_default(client)
    given = {"intended_use": intended_use, "limitations": limitations, "owner": owner}
    tags = {f"card.{k}": v for k, v in given.items() if v is not None}
    return client.store.set_registered_model_tags(name, tags, actor=client.settings.actor)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


@dataclass(frozen=True)
class ModelCard:
    """Everything a card shows, gathered once; rendered as Markdown or HTML."""

    model: RegisteredModel
    version: ModelVersion
    lineage: Lineage
    evaluation: ModelRecord | None
    gates: list[ModelRecord]
    approvals: list[ModelRecord]
    history: list[AliasChange]

    @property
    def uri(self) -> str:
        """The version's URI."""
        return self.version.uri

    def field(self, name: str) -> str:
        """A hand-written field, or a note that it is not stated."""
        return self.model.tags.get(f"card.{name}") or NOT_STATED

    def sections(self) -> list[tuple[str, list[str] | list[list[str]]]]:
        """(title, lines or table rows) per section; the first row of a table is its header."""
        v = self.version
        out: list[tuple[str, list[str] | list[list[str]]]] = []
        details = [
            f"Version {v.version} of {v.model} ({v.status.value}), flavor {v.flavor}",
            f"Aliases: {', '.join(v.aliases) or 'none'}",
            f"Package digest: {v.package_digest}",
            f"Registered {v.created_at} (ms since epoch) by {v.created_by}",
        ]
        if self.model.description:
            details.insert(0, self.model.description)
        out.append(("Model details", details))
        out.append(("Intended use", [self.field("intended_use")]))
        out.append(("Owner", [self.field("owner")]))
        inputs = (v.signature or {}).get("inputs") or {}
        columns = inputs.get("columns") if isinstance(inputs, dict) else None
        if columns:
            out.append(("Inputs", [["column", "type"]] + [[c["name"], c["type"]] for c in columns]))
        out.append(("Training data and lineage", self._lineage_lines()))
        out.extend(self._evaluation_sections())
        if self.gates:
            rows = [["subject", "passed", "reasons"]]
            for g in self.gates:
                reasons = "; ".join(g.body.get("reasons", [])) or "-"
                rows.append([g.subject, "yes" if g.passed else "no", reasons])
            out.append(("Gate decisions", rows))
        if self.approvals:
            rows = [["by", "for alias", "note"]]
            rows += [
                [str(a.body.get("by")), a.subject, str(a.body.get("note", ""))]
                for a in self.approvals
            ]
            out.append(("Approvals", rows))
        if self.history:
            rows = [["alias", "from", "to", "reason", "by"]]
            rows += [
                [c.alias, _fmt(c.previous), _fmt(c.version), c.reason, c.actor]
                for c in self.history
            ]
            out.append(("Alias history", rows))
        out.append(("Limitations", [self.field("limitations")]))
        return out

    def _lineage_lines(self) -> list[str]:
        run = self.lineage.run
        if run is None:
            return ["No run is recorded for this version."]
        lines = [f"Run {run['id']} ({run['name']}) in experiment {run['experiment']}"]
        commit = self.lineage.code.get("mloop.source.git_commit")
        if commit:
            dirty = (
                " with uncommitted changes"
                if self.lineage.code.get("mloop.source.git_dirty") == "true"
                else ""
            )
            lines.append(f"Code: commit {commit}{dirty}")
        for node in self.lineage.data:
            lines.extend(_data_lines(node, 0))
        if not self.lineage.data:
            lines.append("No dataset version was logged as an input of the run.")
        return lines

    def _evaluation_sections(self) -> list[tuple[str, list[str] | list[list[str]]]]:
        if self.evaluation is None:
            return [("Evaluation", ["No evaluation is recorded for this version."])]
        body = self.evaluation.body
        out: list[tuple[str, list[str] | list[list[str]]]] = []
        metrics = body.get("metrics") or {}
        rows = [["metric", "value"]] + [[k, _fmt(x)] for k, x in sorted(metrics.items())]
        title = f"Evaluation ({body.get('n_rows', '?')} rows, target {body.get('target', '?')})"
        out.append((title, rows))
        slices = body.get("slices") or {}
        for column, groups in slices.items():
            names = sorted({m for g in groups for m in (g.get("metrics") or {})})
            table = [["value", "n", *names]]
            for g in groups:
                gm = g.get("metrics") or {}
                table.append(
                    [_fmt(g.get("value")), _fmt(g.get("n")), *(_fmt(gm.get(n)) for n in names)]
                )
            out.append((f"Slices by {column}", table))
        fairness = body.get("fairness") or {}
        if fairness:
            table = [["column", "demographic parity diff.", "equal opportunity diff."]]
            for column, gaps in fairness.items():
                table.append([
                    column,
                    _fmt(gaps.get("demographic_parity_difference")),
                    _fmt(gaps.get("equal_opportunity_difference")),
                ])  # fmt: skip
            out.append(("Fairness", table))
        return out

    def to_markdown(self) -> str:
        """The card as Markdown."""
        lines = [f"# Model card: {self.version.model} v{self.version.version}", ""]
        for title, body in self.sections():
            lines += [f"## {title}", ""]
            if body and isinstance(body[0], list):
                header, *rows = body
                lines.append("| " + " | ".join(_md(c) for c in header) + " |")
                lines.append("|" + "---|" * len(header))
                lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
            else:
                lines += [f"- {line}" if len(body) > 1 else str(line) for line in body]
            lines.append("")
        lines.append(f"_Generated by mloop from the records of {self.uri}._")
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """The card as one self-contained HTML page."""
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>Model card: {html.escape(self.uri)}</title>",
            "<style>body{font:14px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;"
            "padding:0 1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:.2em .6em;text-align:left}h2{margin-top:1.6em}</style></head><body>",
            f"<h1>Model card: {html.escape(self.version.model)} v{self.version.version}</h1>",
        ]
        for title, body in self.sections():
            parts.append(f"<h2>{html.escape(title)}</h2>")
            if body and isinstance(body[0], list):
                header, *rows = body
                parts.append(
                    "<table><tr>"
                    + "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
                    + "</tr>"
                )
                for row in rows:
                    parts.append(
                        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                    )
                parts.append("</table>")
            else:
                parts.append(
                    "<ul>" + "".join(f"<li>{html.escape(str(x))}</li>" for x in body) + "</ul>"
                )
        parts.append(
            f"<p><em>Generated by mloop from the records of {html.escape(self.uri)}.</em></p>"
        )
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"


def _md(cell: object) -> str:
    return str(cell).replace("|", "\\|").replace("\n", " ")


def _data_lines(node: DataNode, depth: int) -> list[str]:
    size = f"{node.rows:,} rows" if node.rows is not None else f"{node.files or 0:,} files"
    lines = [f"{'  ' * depth}{node.context}: {node.ref} ({size}, digest {node.digest[:12]})"]
    for parent in node.parents:
        lines.extend(_data_lines(parent, depth + 1))
    return lines


def model_card(
    uri: str | ModelRef | ModelVersion, *, client: TrackingClient | None = None
) -> ModelCard:
    """Gather the card of a version from the registry, the runs and the dataset versions."""
    client = client_or_default(client)
    version = resolve(uri, client=client)
    model = client.store.get_registered_model(version.model)
    records = client.store.list_model_records(version.model, version.version)
    evaluations = [r for r in records if r.kind == "evaluation"]
    history = [
        c for c in client.store.list_alias_history(version.model)
        if version.version in (c.version, c.previous)
    ]  # fmt: skip
    return ModelCard(
        model=model,
        version=version,
        lineage=lineage(version, client=client),
        evaluation=evaluations[-1] if evaluations else None,
        gates=[r for r in records if r.kind == "gate"],
        approvals=[r for r in records if r.kind == "approval"],
        history=history,
    )
