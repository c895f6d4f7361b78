"""Typed status from what the children report: pure, so every transition is unit-testable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from brainai_operator.advisor import Advice
from brainai_operator.api import BrainAIClusterStatus, Condition, Phase, PostgresStatus, Recommendations

TRUE: Final = "True"
FALSE: Final = "False"
METRICS_AVAILABLE = "MetricsAvailable"
MONITORING_READY = "MonitoringReady"
LAST_BACKUP_SUCCEEDED = "LastBackupSucceeded"
# Pod states that do not clear up by waiting: the tier is Stalled until someone acts.
STALLED_REASONS = frozenset(
    {
        "Unschedulable",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
# Waiting reasons that are just a pod starting.
STARTING = frozenset({"ContainerCreating", "PodInitializing"})
MESSAGE_LIMIT = 300


def _condition(type_: str, ok: bool, reason: str, message: str, generation: int) -> Condition:
    return Condition(
        type=type_,
        status=TRUE if ok else FALSE,
        reason=reason,
        message=message,
        observed_generation=generation,
    )


@dataclass(frozen=True)
class Tier:
    """One tier's readiness, as its `<Name>Ready` condition reports it."""

    condition: str
    ready: bool
    stalled: bool
    reason: str
    message: str


def pod_problem(pods: list[dict[str, Any]]) -> tuple[str, str] | None:
    """The first reason a tier's pods are not running ready, as `kubectl describe pod` would show
    it: the scheduler's verdict, a container stuck waiting (image pull, crash loop, bad config), or
    a running container that fails its readiness probe."""
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == FALSE:
                return cond.get(
                    "reason"
                ) or "Unschedulable", f"pod {name}: {cond.get('message', 'not scheduled')}"
        containers = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
        for c in containers:
            waiting = (c.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason and reason not in STARTING:
                detail = waiting.get("message") or reason
                return reason, f"pod {name} container {c['name']}: {detail}"
        for c in status.get("containerStatuses") or []:
            if "running" in (c.get("state") or {}) and not c.get("ready"):
                return (
                    "NotReady",
                    f"pod {name} container {c['name']}: running, readiness probe not passing yet",
                )
    return None


def explain(tier: Tier, pods: list[dict[str, Any]] | None) -> Tier:
    """A tier that is not ready, with the first pod-level cause in its reason and message."""
    if tier.ready or not pods:
        return tier
    found = pod_problem(pods)
    if found is None:
        return tier
    reason, detail = found
    message = f"{tier.message}; {detail}"[:MESSAGE_LIMIT]
    stalled = tier.stalled or reason in STALLED_REASONS
    return Tier(tier.condition, False, stalled, reason if reason != "NotReady" else tier.reason, message)


def engine_tier(deploy: dict[str, Any] | None, pods: list[dict[str, Any]] | None = None) -> Tier:
    return explain(_engine_tier(deploy), pods)


def _engine_tier(deploy: dict[str, Any] | None) -> Tier:
    name = "EngineReady"
    if deploy is None:
        return Tier(name, False, False, "Creating", "engine Deployment does not exist yet")
    spec, status = deploy.get("spec", {}), deploy.get("status", {})
    want = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0)
    current = status.get("observedGeneration", 0) >= deploy["metadata"].get("generation", 0)
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    progressing = conditions.get("Progressing", {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return Tier(
            name, False, True, "ProgressDeadlineExceeded", progressing.get("message", "rollout stalled")
        )
    failure = conditions.get("ReplicaFailure", {})
    if failure.get("status") == TRUE:
        return Tier(name, False, True, failure.get("reason", "ReplicaFailure"), failure.get("message", ""))
    if current and updated >= want and available >= want and status.get("replicas", 0) == want:
        return Tier(name, True, False, "Available", f"{available}/{want} engine pods available")
    return Tier(
        name, False, False, "RollingOut", f"{available}/{want} engine pods available, {updated} updated"
    )


def _statefulset_ready(sts: dict[str, Any] | None, want: int) -> tuple[bool, int]:
    if sts is None:
        return want == 0, 0
    status = sts.get("status", {})
    ready = status.get("readyReplicas", 0)
    current = status.get("observedGeneration", 0) >= sts["metadata"].get("generation", 0)
    return current and ready >= want and status.get("updatedReplicas", 0) >= want, ready


def external_tier(condition: str, what: str) -> Tier:
    return Tier(condition, True, False, "External", f"using an existing {what} from a Secret")


@dataclass(frozen=True)
class PostgresMembers:
    """Who is who in a Patroni cluster, from the role labels Patroni keeps on its pods."""

    primary: str | None
    replicas: tuple[str, ...]  # ready members running as replicas
    labelled: bool  # some member carries a role: Patroni runs (kwok's pods, which run nothing, do not)
    contenders: tuple[str, ...] = ()  # more than one pod labelled leader: a lost node's pod keeps its label


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == TRUE for c in conditions)


def postgres_members(
    pods: list[dict[str, Any]], role_label: str, leader: str, replica: str, lock_holder: str | None = None
) -> PostgresMembers:
    """`lock_holder`: the leader lock's holder, read only when the labels name more than one leader
    (the pod of a lost node keeps its label until the node is declared dead)."""
    live = sorted(
        (p for p in pods if not p["metadata"].get("deletionTimestamp")), key=lambda p: p["metadata"]["name"]
    )

    def role(pod: dict[str, Any]) -> str | None:
        return (pod["metadata"].get("labels") or {}).get(role_label)

    leaders = [p["metadata"]["name"] for p in live if role(p) == leader]
    if len(leaders) > 1 and lock_holder in leaders:
        primary: str | None = lock_holder
    else:
        primary = leaders[0] if len(leaders) == 1 else None
    return PostgresMembers(
        primary=primary,
        replicas=tuple(p["metadata"]["name"] for p in live if role(p) == replica and pod_ready(p)),
        labelled=any(role(p) for p in live),
        contenders=tuple(leaders) if len(leaders) > 1 else (),
    )


def failing_over(lost: str) -> str:
    return f"leader {lost} lost: Patroni promotes the replica with the most recent WAL"


def postgres_tier(
    sts: dict[str, Any] | None,
    members: PostgresMembers,
    replicas: int,
    previous_primary: str | None,
    switching_to: str | None = None,
    restoring_from: str | None = None,
) -> Tier:
    """`previous_primary`: the leader before this one (the one lost, while none leads);
    `restoring_from`: the cluster whose backups the database is being restored from."""
    name = "PostgresReady"
    want = 1 + replicas
    if restoring_from:
        message = f"restoring from {restoring_from}'s backups: the first member recovers, then leads"
        return Tier(name, False, False, "Restoring", message)
    if members.labelled and members.primary is None:
        if switching_to:
            return Tier(name, False, False, "SwitchingOver", f"switchover to {switching_to} in progress")
        if previous_primary:
            return Tier(name, False, False, "FailingOver", failing_over(previous_primary))
        return Tier(name, False, False, "ElectingLeader", "no member holds the leader lock yet")
    members_ok, ready = _statefulset_ready(sts, want)
    if not members_ok:
        updated = ((sts or {}).get("status") or {}).get("updatedReplicas", 0)
        if ready >= want and updated < want:
            message = f"{updated}/{want} members on the new revision (replicas first, the leader last)"
            return Tier(name, False, False, "RollingMembers", message)
        return Tier(name, False, False, "MembersNotReady", f"{ready}/{want} PostgreSQL members ready")
    if not members.labelled:
        return Tier(
            name, True, False, "MembersReady", f"{ready}/{want} members ready (no Patroni roles seen)"
        )
    if len(members.replicas) < replicas:
        return Tier(
            name,
            False,
            False,
            "ReplicasNotReady",
            f"leader {members.primary}, {len(members.replicas)}/{replicas} replicas ready",
        )
    return Tier(
        name,
        True,
        False,
        "Streaming",
        f"leader {members.primary}, {len(members.replicas)} streaming replica(s)",
    )


def redis_tier(nodes: dict[str, Any] | None, job: dict[str, Any] | None, want: int) -> Tier:
    name = "RedisReady"
    running = max(want, int(((nodes or {}).get("spec") or {}).get("replicas") or 0))  # > want: shrinking
    nodes_ok, ready = _statefulset_ready(nodes, running)
    if not nodes_ok:
        return Tier(name, False, False, "NodesNotReady", f"{ready}/{running} Redis nodes ready")
    job_status = (job or {}).get("status", {})
    if running > want:
        leaving = f"{running - want} node(s)"
        if job_status.get("succeeded", 0) >= 1:
            return Tier(name, False, False, "RemovingNodes", f"slots moved off {leaving}: removing them")
        reason, message = "ShrinkingCluster", f"moving slots and replicas off {leaving} before removing them"
    else:
        reason, message = "FormingCluster", "waiting for the cluster Job to form the cluster"
    if job_status.get("succeeded", 0) >= 1:
        return Tier(name, True, False, "ClusterFormed", f"{want} nodes in the Redis Cluster")
    failed = next(
        (
            c
            for c in job_status.get("conditions", [])
            if c.get("type") == "Failed" and c.get("status") == TRUE
        ),
        None,
    )
    if failed:
        return Tier(name, False, True, "ClusterJobFailed", failed.get("message", "the cluster Job failed"))
    return Tier(name, False, False, reason, message)


def compute_status(
    generation: int,
    strategy: str,
    deploy: dict[str, Any] | None,
    previous: dict[str, Any] | None,
    now: str,
    paused: bool = False,
    error: tuple[str, str] | None = None,
    config_hash: str | None = None,
    data_tiers: list[Tier] | None = None,
    metrics: tuple[bool, str, str] | None = None,
    recommendations: Recommendations | None = None,
    engine_pods: list[dict[str, Any]] | None = None,
    monitoring: tuple[bool, str, str] | None = None,
    postgres: dict[str, Any] | None = None,
    backup: tuple[bool, str, str] | None = None,
) -> dict[str, Any]:
    """The status subresource: phase, per-tier and summary conditions, /scale fields.

    `error` is (reason, message) when the spec could not be turned into children (the children
    are then left untouched). Transition times move only when a condition's status changes.
    `metrics` (ok, reason, message) becomes the MetricsAvailable condition, which is advisory: it
    never affects Ready or the phase, since the engine serves fine without Prometheus; `monitoring`
    becomes MonitoringReady and `backup` LastBackupSucceeded, advisory in the same way.
    """
    tiers = [engine_tier(deploy, engine_pods), *(data_tiers or [])]
    blocking = next((t for t in tiers if not t.ready), None)
    stalled = next((t for t in tiers if t.stalled), None)
    all_ready = blocking is None and not error
    if error:
        degraded = _condition("Degraded", True, error[0], error[1], generation)
    elif stalled:
        degraded = _condition("Degraded", True, stalled.reason, stalled.message, generation)
    else:
        degraded = _condition("Degraded", False, "AsExpected", "no problem detected", generation)
    if paused:
        progressing = _condition(
            "Progressing", False, "Paused", "spec.paused is true: not reconciling", generation
        )
    elif blocking and not stalled and not error:
        progressing = _condition("Progressing", True, blocking.reason, blocking.message, generation)
    else:
        progressing = _condition("Progressing", False, "Stable", "nothing in progress", generation)
    if all_ready:
        summary = _condition("Ready", True, "Ready", "all tiers ready", generation)
    elif error:
        summary = _condition("Ready", False, error[0], error[1], generation)
    else:
        assert blocking is not None
        summary = _condition("Ready", False, blocking.reason, blocking.message, generation)
    # Reconciling/Stalled mirror Progressing/Degraded under the names kstatus (Flux, kpt) reads.
    reconciling = progressing.model_copy(update={"type": "Reconciling"})
    stalled_condition = degraded.model_copy(update={"type": "Stalled"})
    conditions = [
        summary,
        progressing,
        degraded,
        reconciling,
        stalled_condition,
        *(_condition(t.condition, t.ready, t.reason, t.message, generation) for t in tiers),
    ]
    if metrics is not None:
        conditions.append(_condition(METRICS_AVAILABLE, *metrics, generation))
    if monitoring is not None:
        conditions.append(_condition(MONITORING_READY, *monitoring, generation))
    if backup is not None:
        conditions.append(_condition(LAST_BACKUP_SUCCEEDED, *backup, generation))

    _carry_transition_times(conditions, previous, now)

    phase: Phase
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
        replicas=(deploy or {}).get("spec", {}).get("replicas", 0),
        ready_replicas=dstatus.get("readyReplicas", 0),
        selector=",".join(f"{k}={v}" for k, v in sorted(selector.items())) or None,
        config_hash=config_hash or (previous or {}).get("configHash"),
        recommendations=recommendations,
        postgres=PostgresStatus.model_validate(postgres) if postgres else None,
    )
    return status.wire()


def _carry_transition_times(conditions: list[Condition], previous: dict[str, Any] | None, now: str) -> None:
    """A condition's lastTransitionTime moves only when its status changes."""
    old = {c["type"]: c for c in (previous or {}).get("conditions") or []}
    for cond in conditions:
        before = old.get(cond.type)
        if before is not None and before.get("status") == cond.status:
            cond.last_transition_time = before.get("lastTransitionTime", now)
        else:
            cond.last_transition_time = now


def failed_status(previous: dict[str, Any], generation: int, message: str, now: str) -> dict[str, Any]:
    """Status after a pass that failed before it could observe the children: Ready False, Degraded
    and Stalled True with the failure as their message; every other condition is kept as it was."""
    failed = [
        _condition("Ready", False, "ReconcileError", message, generation),
        _condition("Degraded", True, "ReconcileError", message, generation),
        _condition("Stalled", True, "ReconcileError", message, generation),
    ]
    _carry_transition_times(failed, previous, now)
    names = {c.type for c in failed}
    kept = [c for c in previous.get("conditions") or [] if c["type"] not in names]
    wire = [c.wire() for c in failed]
    return {**previous, "phase": "Degraded", "conditions": wire + kept}


def advice_changes_status(advice: Advice, status: dict[str, Any] | None) -> bool:
    """Whether a pass given this advice would write another MetricsAvailable condition or other
    recommendations than `status` shows (no word at all keeps exactly what it shows)."""
    return advisor_state(advice, status) != advisor_state(None, status)


def advisor_state(
    advice: Advice | None, previous: dict[str, Any] | None
) -> tuple[tuple[bool, str, str] | None, Recommendations | None]:
    """The MetricsAvailable condition and recommendations to report, from the advisor's latest word.

    No word yet (just started): keep what status says. Prometheus failing: say so, and keep the last
    recommendation (its generatedAt shows its age). No Prometheus configured: report neither.
    """
    previous = previous or {}
    kept = previous.get("recommendations")
    last = Recommendations.model_validate(kept) if kept else None
    if advice is None:
        old = next((c for c in previous.get("conditions") or [] if c["type"] == METRICS_AVAILABLE), None)
        metrics = (old["status"] == TRUE, old["reason"], old.get("message", "")) if old else None
        return metrics, last
    if not advice.configured:
        return None, None
    if advice.recommendation is not None:
        return (True, "MetricsFound", advice.message), advice.recommendation
    return (False, advice.reason, advice.message), last
