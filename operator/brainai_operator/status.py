"""Typed status from what the children report: pure, so every transition is unit-testable."""

from __future__ import annotations

from typing import Any

from brainai_operator.api import BrainAIClusterStatus, Condition

TRUE, FALSE = "True", "False"


def _condition(type_: str, ok: bool, reason: str, message: str, generation: int) -> Condition:
    return Condition(
        type=type_,
        status=TRUE if ok else FALSE,
        reason=reason,
        message=message,
        observed_generation=generation,
    )


def _deployment_progress(deploy: dict[str, Any] | None) -> tuple[bool, bool, str, str]:
    """(ready, stalled, reason, message) of the engine Deployment."""
    if deploy is None:
        return False, False, "Creating", "engine Deployment does not exist yet"
    spec, status = deploy.get("spec", {}), deploy.get("status", {})
    want = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0)
    current = status.get("observedGeneration", 0) >= deploy["metadata"].get("generation", 0)
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    progressing = conditions.get("Progressing", {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return False, True, "ProgressDeadlineExceeded", progressing.get("message", "rollout stalled")
    failure = conditions.get("ReplicaFailure", {})
    if failure.get("status") == TRUE:
        return False, True, failure.get("reason", "ReplicaFailure"), failure.get("message", "")
    if current and updated >= want and available >= want and status.get("replicas", 0) == want:
        return True, False, "Available", f"{available}/{want} engine pods available"
    return False, False, "RollingOut", f"{available}/{want} engine pods available, {updated} updated"


def compute_status(
    generation: int,
    strategy: str,
    deploy: dict[str, Any] | None,
    previous: dict[str, Any] | None,
    now: str,
    paused: bool = False,
    error: tuple[str, str] | None = None,
    config_hash: str | None = None,
) -> dict[str, Any]:
    """The status subresource: phase, per-tier and summary conditions, /scale fields.

    `error` is (reason, message) when the spec could not be turned into children (the children
    are then left untouched). Transition times move only when a condition's status changes.
    """
    ready, stalled, reason, message = _deployment_progress(deploy)
    engine = _condition("EngineReady", ready, reason, message, generation)
    degraded_reason, degraded_message = (
        error if error else (reason, message) if stalled else ("AsExpected", "no problem detected")
    )
    degraded = _condition("Degraded", bool(error) or stalled, degraded_reason, degraded_message, generation)
    if paused:
        progressing = _condition(
            "Progressing", False, "Paused", "spec.paused is true: not reconciling", generation
        )
    else:
        progressing = _condition(
            "Progressing",
            not ready and not stalled and not error,
            reason if not ready else "Stable",
            message,
            generation,
        )
    all_ready = ready and not error
    summary = _condition(
        "Ready",
        all_ready,
        "Ready" if all_ready else (error[0] if error else reason),
        "all tiers ready" if all_ready else (error[1] if error else message),
        generation,
    )
    conditions = [summary, progressing, degraded, engine]

    old = {c["type"]: c for c in (previous or {}).get("conditions", []) or []}
    for cond in conditions:
        before = old.get(cond.type)
        same = before is not None and before.get("status") == cond.status
        cond.last_transition_time = before.get("lastTransitionTime", now) if same else now

    if paused:
        phase = "Paused"
    elif degraded.status == TRUE:
        phase = "Degraded"
    elif all_ready:
        phase = "Ready"
    elif deploy is None:
        phase = "Pending"
    else:
        phase = "Progressing"

    dstatus = (deploy or {}).get("status", {})
    selector = (deploy or {}).get("spec", {}).get("selector", {}).get("matchLabels", {})
    status = BrainAIClusterStatus(
        phase=phase,
        observed_generation=generation,
        conditions=conditions,
        strategy=strategy,
        replicas=(deploy or {}).get("spec", {}).get("replicas", 0) if deploy else 0,
        ready_replicas=dstatus.get("readyReplicas", 0),
        selector=",".join(f"{k}={v}" for k, v in sorted(selector.items())) or None,
        config_hash=config_hash or (previous or {}).get("configHash"),
    )
    return status.wire()
