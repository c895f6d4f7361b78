"""The advisor's result per cluster, and the terminal report `brain-ai-operator recommend` prints.

The pieces it is built from live beside it: `durations` (the window), `promql` (queries and the
split of their answers), `quantities` (CPU and memory), `rightsizing` (the arithmetic), and
`prometheus` (the I/O and the schedule).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainai_operator import api
from brainai_operator.promql import Key, Usage
from brainai_operator.quantities import cpu_quantity, human_bytes, human_cores, memory_quantity
from brainai_operator.rightsizing import Current


@dataclass(frozen=True)
class Advice:
    """The advisor's latest word on one cluster, handed to the reconcile that writes status.

    configured=False: no Prometheus applies to the cluster, so it shows no recommendation at all.
    """

    configured: bool
    available: bool = False
    reason: str = ""
    message: str = ""
    recommendation: api.Recommendations | None = None


NOT_CONFIGURED = Advice(configured=False)

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: np.ndarray, width: int = 60) -> str:
    """Unicode bars scaled between 0 and the maximum, averaged into at most `width` columns."""
    data = np.asarray(values, float)
    if data.size == 0:
        return ""
    columns = np.array_split(data, max(1, min(width, data.size)))
    means = [float(np.nanmean(c)) if np.any(np.isfinite(c)) else math.nan for c in columns]
    top = max((m for m in means if math.isfinite(m)), default=0.0)
    out = []
    for m in means:
        if not math.isfinite(m):
            out.append(" ")
        else:
            out.append(BARS[min(len(BARS) - 1, int(m / top * (len(BARS) - 1) + 0.5))] if top > 0 else BARS[0])
    return "".join(out)


def table(rows: Sequence[Sequence[str]], indent: int = 2, gap: int = 2) -> list[str]:
    """Rows as left-aligned columns, each as wide as its longest cell (header included) and `gap`
    spaces apart: fixed widths let a long name or value run into its neighbour."""
    if not rows:
        return []
    columns = max(len(row) for row in rows)
    widths = [max((len(row[i]) for row in rows if i < len(row)), default=0) for i in range(columns)]
    sep = " " * gap
    return [
        (
            " " * indent + sep.join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        ).rstrip()
        for row in rows
    ]


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"


# How each evidence field reads in the report; the names stay the wire names, as in status and --json.
EVIDENCE_FORMATS: dict[str, Callable[[Any], str]] = {
    "samples": str,
    "cpuAverageCores": lambda v: f"{human_cores(v)} per pod",
    "cpuP95Cores": lambda v: f"{human_cores(v)} per pod",
    "cpuPeakCores": lambda v: f"{human_cores(v)} per pod",
    "memoryP95Bytes": lambda v: f"{human_bytes(v)} per pod",
    "memoryPeakBytes": lambda v: f"{human_bytes(v)} per pod",
    "memoryGrowthBytesPerHour": lambda v: f"{'+' if v >= 0 else '-'}{human_bytes(abs(v))} per hour",
    "requestRateAverage": lambda v: f"{v:.1f} req/s",
    "requestRatePeak": lambda v: f"{v:.1f} req/s",
    "learnShare": lambda v: f"{v:.0%} of API requests",
    "latencyP95Seconds": _seconds,
    "replicasAverage": lambda v: f"{v:.1f} pods",
    "replicasPeak": lambda v: f"{v} pods",
    "podCapacityRps": lambda v: f"{v:.1f} req/s per pod",
}


def format_report(
    key: Key, current: Current, rec: api.Recommendations, usage: Usage | None = None, width: int = 60
) -> str:
    """What `brain-ai-operator recommend` prints: current vs recommended, reasons, evidence, charts."""
    res = rec.resources
    rows = [
        ("strategy", str(current.strategy), str(rec.strategy)),
        ("cpu request", cpu_quantity(current.cpu_request), str(res.requests.cpu)),
        ("cpu limit", cpu_quantity(current.cpu_limit), str(res.limits.cpu)),
        ("memory request", memory_quantity(current.memory_request), str(res.requests.memory)),
        ("memory limit", memory_quantity(current.memory_limit), str(res.limits.memory)),
        ("minReplicas", str(current.min_replicas), str(rec.min_replicas)),
        ("maxReplicas", str(current.max_replicas), str(rec.max_replicas)),
    ]
    lines = [f"BrainAICluster {key[0]}/{key[1]}: recommendations over the last {rec.window}", ""]
    settings = [("setting", "current", "recommended", "")]
    settings += [(name, now, new, "" if now == new else "*") for name, now, new in rows]
    lines += table(settings)
    lines += ["", "Reasons:", *(f"  - {r}" for r in rec.reasons), "", "Evidence:"]
    lines += table(
        [(name, EVIDENCE_FORMATS.get(name, str)(value)) for name, value in rec.evidence.wire().items()]
    )
    if usage is not None and usage.times.size:
        cpu = usage.cpu_total
        memory = usage.memory_peak
        rps = usage.total_rps

        def top(values: np.ndarray, fmt: Callable[[float], str]) -> str:
            finite = values[np.isfinite(values)]
            return f"max {fmt(float(finite.max()))}" if finite.size else "no data"

        lines += ["", f"Over the window ({rec.window}, {len(usage.times)} points):"]
        lines += table(
            [
                ("cpu (cores)", sparkline(cpu, width), top(cpu, lambda v: f"{v:.2f}")),
                ("memory (max pod)", sparkline(memory, width), top(memory, human_bytes)),
                ("requests/s", sparkline(rps, width), top(rps, lambda v: f"{v:.1f}")),
            ]
        )
    return "\n".join(lines) + "\n"
