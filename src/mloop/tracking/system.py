"""System metrics: CPU, memory, disk and network use sampled on a thread while a run is active.

Logged as ordinary metrics with auto-incremented steps (one step per sample):

======================== =======================================================
``system/cpu_percent``   whole-machine CPU use since the previous sample (%)
``system/process_rss_mb`` resident memory of this process (MB)
``system/memory_percent`` whole-machine memory in use (%)
``system/disk_read_mb``  MB read from disks since the run started (if available)
``system/disk_write_mb`` MB written to disks since the run started (if available)
``system/net_sent_mb``   MB sent over the network since the run started (if available)
``system/net_recv_mb``   MB received since the run started (if available)
======================== =======================================================
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psutil

__all__ = ["DEFAULT_INTERVAL", "SystemMetricsSampler", "sample_system_metrics"]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 10.0
_MB = 1024.0 * 1024.0


def _io_totals() -> dict[str, float]:
    totals: dict[str, float] = {}
    try:
        disk = psutil.disk_io_counters()
    except (OSError, RuntimeError):  # pragma: no cover - containers without /proc/diskstats
        disk = None
    if disk is not None:
        totals["system/disk_read_mb"] = disk.read_bytes / _MB
        totals["system/disk_write_mb"] = disk.write_bytes / _MB
    try:
        net = psutil.net_io_counters()
    except (OSError, RuntimeError):  # pragma: no cover
        net = None
    if net is not None:
        totals["system/net_sent_mb"] = net.bytes_sent / _MB
        totals["system/net_recv_mb"] = net.bytes_recv / _MB
    return totals


def sample_system_metrics(process: psutil.Process, baseline: dict[str, float]) -> dict[str, float]:
    """One sample: CPU, memory, and IO since ``baseline`` (the totals when the run started)."""
    values = {
        "system/cpu_percent": float(psutil.cpu_percent(interval=None)),
        "system/process_rss_mb": process.memory_info().rss / _MB,
        "system/memory_percent": float(psutil.virtual_memory().percent),
    }
    for key, total in _io_totals().items():
        values[key] = max(0.0, total - baseline.get(key, 0.0))
    return values


class SystemMetricsSampler:
    """A daemon thread that calls ``log_metrics`` with a sample every ``interval`` seconds."""

    def __init__(self, log_metrics: Callable[[dict[str, float]], None], interval: float) -> None:
        self._log_metrics = log_metrics
        self.interval = interval
        self._stop = threading.Event()
        self._process = psutil.Process()
        self._baseline = _io_totals()
        psutil.cpu_percent(interval=None)  # the first call only starts the measurement window
        self._thread = threading.Thread(target=self._run, name="mloop-system-metrics", daemon=True)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._log_metrics(sample_system_metrics(self._process, self._baseline))
            except Exception as exc:
                # A finished run or a write failure: sampling is best effort, the run's own
                # calls raise the failure.
                log.debug("mloop: system metrics sampling stopped: %s", exc)
                return

    def stop(self) -> None:
        """Stop sampling and wait for the thread (one last sample is not taken)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5.0)
