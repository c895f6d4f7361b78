from typing import Any

from brainai_operator.status import compute_status

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def deployment(
    want: int = 3,
    available: int = 3,
    updated: int = 3,
    generation: int = 1,
    observed: int = 1,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": want, "selector": {"matchLabels": {"b": "2", "a": "1"}}},
        "status": {
            "replicas": want,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "readyReplicas": available,
            "observedGeneration": observed,
            "conditions": conditions or [],
        },
    }


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_ready_when_every_pod_is_available() -> None:
    status = compute_status(4, "balanced", deployment(), None, T0)
    assert status["phase"] == "Ready"
    assert cond(status, "Ready")["status"] == "True"
    assert cond(status, "Degraded")["status"] == "False"
    assert all(c["observedGeneration"] == 4 for c in status["conditions"])
    assert status["selector"] == "a=1,b=2"
    assert (status["replicas"], status["readyReplicas"]) == (3, 3)


def test_rolling_out_is_progressing() -> None:
    status = compute_status(1, "balanced", deployment(available=1, updated=2), None, T0)
    assert status["phase"] == "Progressing"
    assert cond(status, "Progressing")["status"] == "True"
    assert cond(status, "Ready")["reason"] == "RollingOut"


def test_stale_deployment_generation_is_not_ready() -> None:
    status = compute_status(1, "balanced", deployment(generation=2, observed=1), None, T0)
    assert cond(status, "EngineReady")["status"] == "False"


def test_stalled_rollout_is_degraded() -> None:
    stalled = deployment(
        available=1,
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "too slow",
            }
        ],
    )
    status = compute_status(1, "balanced", stalled, None, T0)
    assert status["phase"] == "Degraded"
    assert cond(status, "Degraded")["reason"] == "ProgressDeadlineExceeded"


def test_missing_deployment_is_pending() -> None:
    assert compute_status(1, "balanced", None, None, T0)["phase"] == "Pending"


def test_spec_error_is_degraded_and_not_ready() -> None:
    status = compute_status(2, "balanced", deployment(), None, T0, error=("InvalidConfig", "memory.x: bad"))
    assert status["phase"] == "Degraded"
    assert cond(status, "Ready")["status"] == "False"
    assert cond(status, "Degraded")["message"] == "memory.x: bad"


def test_paused_says_so() -> None:
    status = compute_status(1, "balanced", deployment(), None, T0, paused=True)
    assert status["phase"] == "Paused"
    assert cond(status, "Progressing")["reason"] == "Paused"


def test_transition_time_moves_only_on_change() -> None:
    first = compute_status(1, "balanced", deployment(), None, T0)
    again = compute_status(1, "balanced", deployment(), first, T1)
    assert again == first  # identical status: nothing to write
    changed = compute_status(1, "balanced", deployment(available=2), first, T1)
    assert cond(changed, "Ready")["lastTransitionTime"] == T1
    assert cond(changed, "Degraded")["lastTransitionTime"] == T0


def sts(ready: int, want: int) -> dict[str, Any]:
    return {
        "metadata": {"generation": 1},
        "spec": {"replicas": want},
        "status": {"readyReplicas": ready, "updatedReplicas": want, "observedGeneration": 1},
    }


def member(name: str, role: str | None, ready: bool = True, terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"brainai.io/postgres-role": role} if role else {}}
    if terminating:
        meta["deletionTimestamp"] = T0
    return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


def members(*pods: dict[str, Any], holder: str | None = None) -> Any:
    from brainai_operator.status import postgres_members

    return postgres_members(list(pods), "brainai.io/postgres-role", "master", "replica", lock_holder=holder)


def test_data_tiers_gate_ready() -> None:
    from brainai_operator.status import postgres_tier, redis_tier

    starting = members(member("c-postgres-0", "master"), member("c-postgres-1", None, ready=False))
    waiting = [postgres_tier(sts(1, 2), starting, 1, None), redis_tier(sts(6, 6), None, 6)]
    status = compute_status(1, "balanced", deployment(), None, T0, data_tiers=waiting)
    assert status["phase"] == "Progressing"
    assert cond(status, "PostgresReady")["reason"] == "MembersNotReady"
    assert cond(status, "RedisReady")["reason"] == "FormingCluster"
    streaming = members(member("c-postgres-0", "master"), member("c-postgres-1", "replica"))
    done = [
        postgres_tier(sts(2, 2), streaming, 1, None),
        redis_tier(sts(6, 6), {"status": {"succeeded": 1}}, 6),
    ]
    assert compute_status(1, "balanced", deployment(), None, T0, data_tiers=done)["phase"] == "Ready"
    assert (
        "leader c-postgres-0, 1 streaming"
        in cond(compute_status(1, "balanced", deployment(), None, T0, data_tiers=done), "PostgresReady")[
            "message"
        ]
    )
    failed = redis_tier(sts(6, 6), {"status": {"conditions": [{"type": "Failed", "status": "True"}]}}, 6)
    assert compute_status(1, "balanced", deployment(), None, T0, data_tiers=[failed])["phase"] == "Degraded"


def test_a_lost_leader_is_failing_over_until_a_replica_holds_the_lock() -> None:
    from brainai_operator.status import postgres_tier

    # The leader's pod is going: its label does not make it the leader any more.
    lost = members(member("c-postgres-0", "master", terminating=True), member("c-postgres-1", "replica"))
    assert lost.primary is None and lost.labelled
    tier = postgres_tier(sts(1, 2), lost, 1, "c-postgres-0")
    assert (tier.ready, tier.reason) == (False, "FailingOver") and "c-postgres-0" in tier.message
    assert postgres_tier(sts(1, 2), lost, 1, None).reason == "ElectingLeader"
    assert postgres_tier(sts(1, 2), lost, 1, "c-postgres-0", "c-postgres-1").reason == "SwitchingOver"


def test_a_lost_nodes_pod_keeps_its_label_and_the_lock_says_who_leads() -> None:
    both = (
        member("c-postgres-0", "master"),
        member("c-postgres-1", "master"),
        member("c-postgres-2", "replica"),
    )
    assert members(*both).primary is None and members(*both).contenders == ("c-postgres-0", "c-postgres-1")
    assert members(*both, holder="c-postgres-1").primary == "c-postgres-1"


def test_pods_that_run_nothing_report_no_roles_and_ready_on_readiness_alone() -> None:
    from brainai_operator.status import postgres_tier

    tier = postgres_tier(
        sts(2, 2), members(member("c-postgres-0", None), member("c-postgres-1", None)), 1, None
    )
    assert tier.ready and "no Patroni roles" in tier.message


def test_a_shrinking_redis_tier_is_not_ready_until_the_nodes_are_gone() -> None:
    from brainai_operator.status import redis_tier

    draining = redis_tier(sts(8, 8), None, 6)
    assert (draining.ready, draining.reason) == (
        False,
        "ShrinkingCluster",
    ) and "2 node(s)" in draining.message
    drained = redis_tier(sts(8, 8), {"status": {"succeeded": 1}}, 6)
    assert (drained.ready, drained.reason) == (False, "RemovingNodes")
    assert redis_tier(sts(6, 6), {"status": {"succeeded": 1}}, 6).ready


def pod(name: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": status}


UNSCHEDULABLE = pod(
    "c-postgres-0",
    conditions=[
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu.",
        }
    ],
)


def test_a_pending_pod_names_the_schedulers_reason_and_stalls_the_cluster() -> None:
    from brainai_operator.status import explain, postgres_tier

    tier = explain(postgres_tier(None, members(), 2, None), [UNSCHEDULABLE])
    status = compute_status(1, "balanced", deployment(), None, T0, data_tiers=[tier])
    assert status["phase"] == "Degraded"
    ready = cond(status, "Ready")
    assert ready["reason"] == "Unschedulable"
    assert "Insufficient cpu" in ready["message"] and "c-postgres-0" in ready["message"]
    assert cond(status, "Stalled")["status"] == "True"


def test_engine_pods_explain_a_stuck_rollout() -> None:
    waiting = pod(
        "c-engine-x",
        containerStatuses=[
            {
                "name": "engine",
                "ready": False,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no"}},
            }
        ],
    )
    status = compute_status(1, "balanced", deployment(available=0), None, T0, engine_pods=[waiting])
    assert cond(status, "EngineReady")["reason"] == "ImagePullBackOff"
    assert status["phase"] == "Degraded"


def test_a_starting_or_probing_pod_is_progress_not_a_stall() -> None:
    starting = pod(
        "c-engine-y",
        containerStatuses=[
            {"name": "engine", "ready": False, "state": {"waiting": {"reason": "ContainerCreating"}}}
        ],
    )
    probing = pod(
        "c-engine-z", containerStatuses=[{"name": "engine", "ready": False, "state": {"running": {}}}]
    )
    status = compute_status(1, "balanced", deployment(available=1), None, T0, engine_pods=[starting, probing])
    assert status["phase"] == "Progressing"
    assert cond(status, "EngineReady")["reason"] == "RollingOut"
    assert "readiness probe" in cond(status, "EngineReady")["message"]


def test_monitoring_without_its_crds_is_reported_but_does_not_block_ready() -> None:
    missing = (False, "CRDsMissing", "install the Prometheus Operator's CRDs")
    status = compute_status(1, "balanced", deployment(), None, T0, monitoring=missing)
    assert status["phase"] == "Ready"
    assert cond(status, "MonitoringReady")["status"] == "False"
    assert cond(status, "MonitoringReady")["reason"] == "CRDsMissing"
