"""Autopilot: the advisor's recommendation applied to the resolved settings, within the user's bounds.

Pure. It changes what the operator deploys (`Resolved`), never the spec, so GitOps keeps owning the
spec and switching autopilot off returns to exactly what the spec says. What it applies is
remembered in status.recommendations.autopilot, which makes the choice stable across passes and
operator restarts; a new value replaces it only when it differs enough to be worth rolling pods
for, and at most `maxChangesPerHour` times an hour.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from brainai_operator import api
from brainai_operator.clock import parse_rfc3339, rfc3339
from brainai_operator.quantities import cores, cpu_quantity, memory_quantity, nbytes
from brainai_operator.rightsizing import window_shortfall
from brainai_operator.strategies import Resolved, resolve

log = logging.getLogger(__name__)
HOUR = dt.timedelta(hours=1)
MIN_RESOURCE_CHANGE = 0.10  # relative; smaller moves are noise and would only roll the pods


@dataclass(frozen=True)
class Plan:
    resolved: Resolved
    status: api.AutopilotStatus | None
    changes: list[str] = field(default_factory=list)


def _clamp(value: float, low: float | None, high: float | None) -> float:
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    return value


def _bounded(resources: api.RecommendedResources, b: api.AutopilotBounds) -> api.RecommendedResources:
    """Requests within the bounds; limits never below the requests."""
    req, lim = resources.requests, resources.limits
    cpu = _clamp(cores(req.cpu) or 0.1, cores(b.cpu_request_min), cores(b.cpu_request_max))
    memory = _clamp(nbytes(req.memory) or 0, nbytes(b.memory_request_min), nbytes(b.memory_request_max))
    return api.RecommendedResources(
        requests=api.ResourceList(cpu=cpu_quantity(cpu), memory=memory_quantity(memory)),
        limits=api.ResourceList(
            cpu=cpu_quantity(max(cores(lim.cpu) or cpu, cpu)),
            memory=memory_quantity(max(nbytes(lim.memory) or memory, memory)),
        ),
    )


def _replica_bounds(low: int, high: int, b: api.AutopilotBounds) -> tuple[int, int]:
    """minReplicas at or above the floor, maxReplicas at or below the ceiling, min <= max."""
    high = int(_clamp(high, b.min_replicas, b.max_replicas))
    return min(high, int(_clamp(low, b.min_replicas, b.max_replicas))), high


def target_settings(rec: api.Recommendations, autopilot: api.AutopilotSpec, hpa: bool) -> api.AppliedSettings:
    """The recommendation clamped to the bounds."""
    b = autopilot.bounds or api.AutopilotBounds()
    min_replicas = max_replicas = None
    if hpa:  # without an HPA, /scale owns the replica count: autopilot leaves it alone
        min_replicas, max_replicas = _replica_bounds(rec.min_replicas, rec.max_replicas, b)
    return api.AppliedSettings(
        strategy=rec.strategy if autopilot.allow_strategy_change else None,
        resources=_bounded(rec.resources, b),
        min_replicas=min_replicas,
        max_replicas=max_replicas,
    )


def apply_settings(
    spec: api.BrainAIClusterSpec, resolved: Resolved, applied: api.AppliedSettings
) -> Resolved:
    """`resolved` with what autopilot applies: a strategy change re-resolves the spec under the new
    strategy (so its config, resources and read replicas follow), then resources and HPA bounds win."""
    out = resolved
    if applied.strategy and applied.strategy != resolved.strategy:
        out = resolve(spec.model_copy(update={"strategy": applied.strategy}))
    update: dict[str, Any] = {}
    if applied.resources:
        update["resources"] = {
            "requests": {**out.resources.get("requests", {}), **applied.resources.requests.wire()},
            "limits": {**out.resources.get("limits", {}), **applied.resources.limits.wire()},
        }
    if out.autoscaling and applied.min_replicas is not None and applied.max_replicas is not None:
        hpa = out.autoscaling.model_copy(
            update={"min_replicas": applied.min_replicas, "max_replicas": applied.max_replicas}
        )
        update["autoscaling"] = hpa
        update["replicas"] = hpa.min_replicas
    return out.model_copy(update=update) if update else out


def _effective(resolved: Resolved) -> api.AppliedSettings:
    """What runs without autopilot, in the same shape, to compare a target against."""
    req, lim = resolved.resources.get("requests", {}), resolved.resources.get("limits", {})
    hpa = resolved.autoscaling
    return api.AppliedSettings(
        strategy=resolved.strategy,
        resources=api.RecommendedResources(
            requests=api.ResourceList(cpu=req.get("cpu"), memory=req.get("memory")),
            limits=api.ResourceList(cpu=lim.get("cpu"), memory=lim.get("memory")),
        ),
        min_replicas=hpa.min_replicas if hpa else None,
        max_replicas=hpa.max_replicas if hpa else None,
    )


def _moved(old: Any, new: Any, parse: Callable[[Any], float | None]) -> bool:
    a, b = parse(old), parse(new)
    if a is None or b is None:
        return a != b
    return abs(b - a) > MIN_RESOURCE_CHANGE * max(abs(a), 1e-9)


def changes(before: api.AppliedSettings, after: api.AppliedSettings) -> list[str]:
    """Human-readable differences worth acting on (resources move only beyond 10%)."""
    found = []
    if after.strategy and after.strategy != before.strategy:
        found.append(f"strategy {before.strategy} -> {after.strategy}")
    if after.resources and before.resources:
        for kind in ("requests", "limits"):
            old, new = getattr(before.resources, kind), getattr(after.resources, kind)
            if _moved(old.cpu, new.cpu, cores):
                found.append(f"cpu {kind[:-1]} {old.cpu} -> {new.cpu}")
            if _moved(old.memory, new.memory, nbytes):
                found.append(f"memory {kind[:-1]} {old.memory} -> {new.memory}")
    for name in ("min_replicas", "max_replicas"):
        old_n, new_n = getattr(before, name), getattr(after, name)
        if new_n is not None and old_n != new_n:
            label = "minReplicas" if name == "min_replicas" else "maxReplicas"
            found.append(f"{label} {old_n} -> {new_n}")
    return found


def plan(
    spec: api.BrainAIClusterSpec,
    resolved: Resolved,
    rec: api.Recommendations | None,
    previous: api.AutopilotStatus | None,
    now: dt.datetime,
) -> Plan:
    """Decide what autopilot applies in this pass, and the status that records it."""
    autopilot = spec.autopilot
    if autopilot is None or not autopilot.enabled:
        return Plan(resolved, api.AutopilotStatus(enabled=False) if rec else None)
    previous = previous if previous and previous.enabled else None
    applied = _within(previous.applied, autopilot) if previous and previous.applied else None
    recent = [t for t in (previous.change_times or []) if now - parse_rfc3339(t) < HOUR] if previous else []
    last = previous.last_change_time if previous else None
    current = apply_settings(spec, resolved, applied) if applied else resolved
    thin = window_shortfall(rec) if rec is not None else None
    if rec is None or thin is not None:
        message = "waiting for a recommendation"
        if rec is not None:  # thin evidence: keep what is applied, and say why
            message = f"not applied: too little usage behind the recommendation ({thin})"
            log.info("autopilot: %s; generated at %s over %s", message, rec.generated_at, rec.window)
        waiting = api.AutopilotStatus(
            enabled=True,
            applied=applied,
            last_change_time=last,
            change_times=recent or None,
            message=message,
        )
        return Plan(current, waiting)
    target = target_settings(rec, autopilot, resolved.autoscaling is not None)
    diff = changes(_effective(current), target)
    message = "applied the latest recommendation" if applied else "nothing to change"
    made: list[str] = []
    if diff and len(recent) >= autopilot.max_changes_per_hour:
        next_at = rfc3339(min(parse_rfc3339(t) for t in recent) + HOUR) if recent else "never"
        message = (
            f"rate limited: {len(recent)} change(s) in the last hour (maxChangesPerHour "
            f"{autopilot.max_changes_per_hour}); pending: {', '.join(diff)}; next change allowed at {next_at}"
        )
    elif diff:
        applied = _merge(applied, target, _effective(current))
        current = apply_settings(spec, resolved, applied)
        stamp = rfc3339(now)
        recent = [*recent, stamp]
        last = stamp
        made = diff
        message = "applied the latest recommendation"
    status = api.AutopilotStatus(
        enabled=True, applied=applied, last_change_time=last, change_times=recent or None, message=message
    )
    return Plan(current, status, made)


def _within(applied: api.AppliedSettings, autopilot: api.AutopilotSpec) -> api.AppliedSettings:
    """What was applied, re-clamped to the bounds as they are now: edits to the bounds or to
    allowStrategyChange take effect at once, without waiting for the rate limit."""
    b = autopilot.bounds or api.AutopilotBounds()
    update: dict[str, Any] = {}
    if applied.strategy and not autopilot.allow_strategy_change:
        update["strategy"] = None
    if applied.resources:
        update["resources"] = _bounded(applied.resources, b)
    if applied.min_replicas is not None and applied.max_replicas is not None:
        update["min_replicas"], update["max_replicas"] = _replica_bounds(
            applied.min_replicas, applied.max_replicas, b
        )
    return applied.model_copy(update=update)


def _merge(
    applied: api.AppliedSettings | None, target: api.AppliedSettings, effective: api.AppliedSettings
) -> api.AppliedSettings:
    """Take the target's values, but keep a resource where it moved less than the threshold: small
    moves would roll the pods for nothing."""
    resources = target.resources
    if resources and effective.resources:

        def pick(kind: str, name: str, parse: Callable[[Any], float | None]) -> Any:
            old = getattr(getattr(effective.resources, kind), name)
            new = getattr(getattr(resources, kind), name)
            return new if _moved(old, new, parse) else old

        cpu, memory = pick("requests", "cpu", cores), pick("requests", "memory", nbytes)
        cpu_limit, memory_limit = pick("limits", "cpu", cores), pick("limits", "memory", nbytes)
        # A kept limit may not fall below a moved request: the API server would refuse the pod.
        if (cores(cpu_limit) or 0) < (cores(cpu) or 0):
            cpu_limit = cpu
        if (nbytes(memory_limit) or 0) < (nbytes(memory) or 0):
            memory_limit = memory
        resources = api.RecommendedResources(
            requests=api.ResourceList(cpu=cpu, memory=memory),
            limits=api.ResourceList(cpu=cpu_limit, memory=memory_limit),
        )
    return target.model_copy(update={"resources": resources})
