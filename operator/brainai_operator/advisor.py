"""The advisor's result per cluster, and the terminal report `brain-ai-operator recommend` prints.

The pieces it is built from live beside it: `durations` (the window), `promql` (queries and the
split of their answers), `quantities` (CPU and memory), `rightsizing` (the arithmetic), and
`prometheus` (the I/O and the schedule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from brainai_operator import api
from brainai_operator.promql import Key, Usage
from brainai_operator.quantities import cpu_quantity, human_bytes, memory_quantity
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
    columns = np.array_split(data, min(width, data.size))
    means = [float(np.nanmean(c)) if np.any(np.isfinite(c)) else math.nan for c in columns]
    top = max((m for m in means if math.isfinite(m)), default=0.0)
    out = []
    for m in means:
        if not math.isfinite(m):
            out.append(" ")
        else:
            out.append(BARS[min(len(BARS) - 1, int(m / top * (len(BARS) - 1) + 0.5))] if top > 0 else BARS[0])
    return "".join(out)


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
    lines.append(f"  {'setting':<16}{'current':>12}{'recommended':>14}")
    for name, now, new in rows:
        mark = "" if now == new else "  *"
        lines.append(f"  {name:<16}{now:>12}{new:>14}{mark}")
    lines += ["", "Reasons:", *(f"  - {r}" for r in rec.reasons), "", "Evidence:"]
    for name, value in rec.evidence.wire().items():
        lines.append(f"  {name:<22}{value}")
    if usage is not None and usage.times.size:
        cpu = usage.cpu_total
        memory = usage.memory_peak
        rps = usage.total_rps
        lines += ["", f"Over the window ({rec.window}, {len(usage.times)} points):"]
        charts = (
            ("cpu (cores)", cpu, f"max {np.nanmax(cpu):.2f}" if np.any(np.isfinite(cpu)) else ""),
            (
                "memory (max pod)",
                memory,
                f"max {human_bytes(np.nanmax(memory))}" if np.any(np.isfinite(memory)) else "",
            ),
            ("requests/s", rps, f"max {np.nanmax(rps):.1f}" if np.any(np.isfinite(rps)) else ""),
        )
        for name, values, top in charts:
            lines.append(f"  {name:<17}{sparkline(values, width)}  {top}")
    return "\n".join(lines) + "\n"
