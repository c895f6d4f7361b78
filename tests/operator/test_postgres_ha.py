"""The Patroni reconcile steps: what the operator asks of Patroni, and what it reports."""

from __future__ import annotations

import json
from typing import Any

from brainai_operator import postgres_ha
from brainai_operator.api import BrainAIClusterSpec
from brainai_operator.reconcile import merge_patch
from brainai_operator.resources import postgres
from brainai_operator.status import postgres_members
from brainai_operator.strategies import resolve

NOW = "2026-12-03T10:00:00Z"


def member(name: str, role: str | None, revision: str = "new", ready: bool = True) -> dict[str, Any]:
    labels = {"controller-revision-hash": revision, **({postgres.ROLE_LABEL: role} if role else {})}
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {"conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def statefulset(update: str = "new") -> dict[str, Any]:
    return {"metadata": {"generation": 2}, "status": {"observedGeneration": 2, "updateRevision": update}}


def members(*pods: dict[str, Any]) -> Any:
    return postgres_members(list(pods), postgres.ROLE_LABEL, postgres.LEADER_ROLE, postgres.REPLICA_ROLE)


def test_members_roll_replicas_first_then_the_leader_after_a_switchover() -> None:
    pods = [
        member("c-postgres-0", "master", "old"),
        member("c-postgres-1", "replica", "old"),
        member("c-postgres-2", "replica"),
    ]
    step = postgres_ha.next_roll_step(statefulset(), pods, members(*pods), 3)
    assert step is not None and (step.action, step.pod) == ("delete", "c-postgres-1")
    # One at a time: nothing while a member is not ready.
    waiting = [*pods[:1], member("c-postgres-1", "replica", ready=False), pods[2]]
    assert postgres_ha.next_roll_step(statefulset(), waiting, members(*waiting), 3) is None
    # Only the leader is outdated: hand over to an updated replica first.
    rolled = [pods[0], member("c-postgres-1", "replica"), pods[2]]
    step = postgres_ha.next_roll_step(statefulset(), rolled, members(*rolled), 3)
    assert step is not None and (step.action, step.pod) == ("switchover", "c-postgres-1")
    # A lone member is just restarted; an up-to-date cluster needs nothing.
    alone = [member("c-postgres-0", "master", "old")]
    step = postgres_ha.next_roll_step(statefulset(), alone, members(*alone), 1)
    assert step is not None and (step.action, step.pod) == ("delete", "c-postgres-0")
    done = [member("c-postgres-0", "master"), member("c-postgres-1", "replica")]
    assert postgres_ha.next_roll_step(statefulset(), done, members(*done), 2) is None


class FakeKube:
    """The calls reconcile_postgres makes, against a dict of objects and the members' pods; writes
    are recorded."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]], pods: list[dict[str, Any]]) -> None:
        self.objects, self.pods = objects, pods
        self.writes: list[tuple[str, str, Any]] = []

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    def apply(self, obj: dict[str, Any], manager: str = "") -> dict[str, Any]:
        self.writes.append(("apply", obj["metadata"]["name"], obj["metadata"].get("annotations")))
        return obj

    def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, body: dict[str, Any]
    ) -> None:
        self.writes.append(("patch", name, body))

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None, propagation: str = ""
    ) -> None:
        self.writes.append(("delete", name, None))


def cluster(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "c", "namespace": "ns", "annotations": annotations or {}}}


def tier(**postgres_spec: Any) -> Any:
    spec = BrainAIClusterSpec.model_validate(
        {"postgres": {"enabled": True, "readReplicas": 2, **postgres_spec}}
    )
    return resolve(spec).postgres


def reasons(state: postgres_ha.PostgresState) -> list[str]:
    return [reason for reason, _, _ in state.events]


def test_a_switchover_is_asked_of_patroni_once_and_reported_when_done() -> None:
    pods = [
        member("c-postgres-0", "master"),
        member("c-postgres-1", "replica"),
        member("c-postgres-2", "replica"),
    ]
    kube = FakeKube({("StatefulSet", "c-postgres"): statefulset()}, pods)
    ask = cluster({postgres.PRIMARY_ANNOTATION: "c-postgres-2"})
    before = {"primary": "c-postgres-0", "dynamicConfigHash": postgres_ha.config_hash(tier())}
    state = postgres_ha.reconcile_postgres(kube, ask, tier(), kube.pods, before, NOW)  # type: ignore[arg-type]
    assert kube.writes == [
        ("apply", "c-postgres-rw-failover", {"leader": "c-postgres-0", "member": "c-postgres-2"})
    ]
    assert reasons(state) == ["SwitchoverRequested"] and state.status["switchover"] == "c-postgres-2"
    # Patroni has not acted yet: the same request is not written again.
    kube.objects[("Endpoints", "c-postgres-rw-failover")] = {"metadata": {"annotations": kube.writes[0][2]}}
    kube.writes.clear()
    state = postgres_ha.reconcile_postgres(kube, ask, tier(), kube.pods, state.status, NOW)  # type: ignore[arg-type]
    assert kube.writes == [] and reasons(state) == []
    # Mid-switchover no member leads: that is not a failover.
    kube.pods = [member("c-postgres-0", "replica"), pods[1], member("c-postgres-2", None)]
    state = postgres_ha.reconcile_postgres(kube, ask, tier(), kube.pods, state.status, NOW)  # type: ignore[arg-type]
    assert reasons(state) == [] and "primary" not in state.status
    kube.pods = [member("c-postgres-0", "replica"), pods[1], member("c-postgres-2", "master")]
    state = postgres_ha.reconcile_postgres(kube, ask, tier(), kube.pods, state.status, NOW)  # type: ignore[arg-type]
    assert reasons(state) == ["SwitchedOver"]
    assert state.status["primary"] == "c-postgres-2" and state.status["formerPrimary"] == "c-postgres-0"
    assert "switchover" not in state.status and state.status["lastPrimaryChange"] == NOW


def test_a_lost_leader_is_reported_failing_over_then_failed_over() -> None:
    kube = FakeKube({}, [member("c-postgres-1", "replica"), member("c-postgres-2", "replica")])
    before = {"primary": "c-postgres-0", "dynamicConfigHash": postgres_ha.config_hash(tier())}
    state = postgres_ha.reconcile_postgres(kube, cluster(), tier(), kube.pods, before, NOW)  # type: ignore[arg-type]
    assert reasons(state) == ["FailingOver"] and state.status["formerPrimary"] == "c-postgres-0"
    kube.pods = [member("c-postgres-1", "master"), member("c-postgres-2", "replica")]
    state = postgres_ha.reconcile_postgres(kube, cluster(), tier(), kube.pods, state.status, NOW)  # type: ignore[arg-type]
    assert reasons(state) == ["FailedOver"] and state.status["primary"] == "c-postgres-1"
    assert any(warning for _, _, warning in state.events)


def test_a_switchover_to_a_member_that_is_not_a_ready_replica_waits_and_says_so() -> None:
    kube = FakeKube({}, [member("c-postgres-0", "master"), member("c-postgres-1", "replica", ready=False)])
    ask = cluster({postgres.PRIMARY_ANNOTATION: "c-postgres-1"})
    state = postgres_ha.reconcile_postgres(
        kube, ask, tier(readReplicas=1), kube.pods, {"primary": "c-postgres-0"}, NOW
    )  # type: ignore[arg-type]
    assert reasons(state) == ["SwitchoverWaiting"] and not [w for w in kube.writes if w[0] == "apply"]


def test_the_dynamic_configuration_follows_the_spec_and_keeps_what_patroni_added() -> None:
    stored = {
        "ttl": 30,
        "check_timeline": True,
        "postgresql": {"parameters": {"max_connections": "200", "x": "1"}},
    }
    kube = FakeKube(
        {
            ("Endpoints", "c-postgres-rw-config"): {
                "metadata": {"annotations": {"config": json.dumps(stored)}}
            }
        },
        [],
    )
    wanted = tier(synchronous=True, parameters={"max_connections": "300"})
    applied = postgres_ha.sync_dynamic_config(kube, "c", "ns", wanted, None)  # type: ignore[arg-type]
    assert applied == postgres_ha.config_hash(wanted)
    ((_, name, body),) = kube.writes
    written = json.loads(body["metadata"]["annotations"]["config"])
    assert (
        name == "c-postgres-rw-config"
        and written["synchronous_mode"] is True
        and written["ttl"] == postgres.TTL
    )
    assert written["check_timeline"] is True and written["postgresql"]["parameters"]["x"] == "1"
    assert written["postgresql"]["parameters"]["max_connections"] == "300"
    kube.writes.clear()  # recorded as applied: no read, no write
    assert postgres_ha.sync_dynamic_config(kube, "c", "ns", wanted, applied) == applied and kube.writes == []  # type: ignore[arg-type]


def test_a_status_patch_clears_what_status_no_longer_says() -> None:
    previous = {
        "phase": "Ready",
        "postgres": {"primary": "a", "switchover": "b"},
        "recommendations": {"x": 1},
    }
    status = {"phase": "Ready", "postgres": {"primary": "b"}}
    assert merge_patch(previous, status) == {
        "phase": "Ready",
        "postgres": {"primary": "b", "switchover": None},
        "recommendations": None,
    }


def test_a_roll_goes_before_the_annotations_switchover() -> None:
    # The annotation wants c-postgres-1, which waits to be rolled itself: restart it first.
    pods = [member("c-postgres-0", "master"), member("c-postgres-1", "replica", "old")]
    kube = FakeKube({("StatefulSet", "c-postgres"): statefulset()}, pods)
    ask = cluster({postgres.PRIMARY_ANNOTATION: "c-postgres-1"})
    before = {"primary": "c-postgres-0", "dynamicConfigHash": postgres_ha.config_hash(tier(readReplicas=1))}
    state = postgres_ha.reconcile_postgres(kube, ask, tier(readReplicas=1), kube.pods, before, NOW)  # type: ignore[arg-type]
    assert kube.writes == [("delete", "c-postgres-1", None)] and reasons(state) == ["RollingMembers"]
    kube.pods, kube.writes = [pods[0], member("c-postgres-1", "replica")], []
    state = postgres_ha.reconcile_postgres(kube, ask, tier(readReplicas=1), kube.pods, state.status, NOW)  # type: ignore[arg-type]
    assert reasons(state) == ["SwitchoverRequested"] and kube.writes[0][1] == "c-postgres-rw-failover"
