"""Monitoring: monitors read windows of a deployment's prediction log, compare them with a
reference and store one report per window with per-check, per-feature results.

::

    import mloop

    mloop.monitors.create(deployment="fraud-api", reference="transactions@v3", window="1h")
    for report in mloop.monitors.run("fraud-api"):
        print(report.window_start_ms, report.status, report.alerts)

Also reachable as ``mloop.monitors``. Names load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.monitoring.checks import CHECKS
    from mloop.monitoring.monitors import (
        Monitor,
        MonitorReport,
        MonitorResult,
        create,
        delete,
        get,
        history,
        list_monitors,
        reports,
        run,
    )
    from mloop.monitoring.windows import parse_window

_NAMES = {
    "CHECKS": "mloop.monitoring.checks",
    "parse_window": "mloop.monitoring.windows",
    **dict.fromkeys(
        (
            "Monitor", "MonitorReport", "MonitorResult", "create", "delete", "get", "history",
            "list_monitors", "reports", "run",
        ),
        "mloop.monitoring.monitors",
    ),
}  # fmt: skip

__all__ = [
    "CHECKS",
    "Monitor",
    "MonitorReport",
    "MonitorResult",
    "create",
    "delete",
    "get",
    "history",
    "list_monitors",
    "parse_window",
    "reports",
    "run",
]


def __getattr__(name: str) -> Any:
    """Load a public name on first use."""
    if name in _NAMES:
        return getattr(import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'mloop.monitoring' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names."""
    return sorted(__all__)
