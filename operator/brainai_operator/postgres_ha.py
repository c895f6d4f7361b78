"""Reconcile steps for the Patroni cluster: who leads, switchover on request, rolling members
replicas-first, and Patroni's dynamic configuration kept in step with the spec.

Patroni elects, fails over and rewinds by itself; the operator only asks (through Patroni's own
DCS keys, as `patronictl` does) and deletes pods one at a time to roll them. Reads beyond the
informers' cache happen only while something is in flight (two pods claiming the lead, a
switchover pending, the dynamic configuration changed), so a settled cluster costs no request.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from brainai_operator.client import FIELD_MANAGER, Kube
from brainai_operator.resources import postgres
from brainai_operator.resources.common import content_hash
from brainai_operator.status import PostgresMembers, failing_over, pod_ready, postgres_members
from brainai_operator.strategies import DataTier

log = logging.getLogger(__name__)

REVISION_LABEL = "controller-revision-hash"
SWITCHOVER_MANAGER = f"{FIELD_MANAGER}-switchover"


def observe_members(kube: Kube, name: str, namespace: str, pods: list[dict[str, Any]]) -> PostgresMembers:
    def members(holder: str | None = None) -> PostgresMembers:
        return postgres_members(
            pods, postgres.ROLE_LABEL, postgres.LEADER_ROLE, postgres.REPLICA_ROLE, lock_holder=holder
        )

    found = members()
    if found.contenders:  # the leader lock says which of them leads
        lock = kube.get("v1", "Endpoints", postgres.names(name)["rw"], namespace) or {}
        found = members(((lock.get("metadata") or {}).get("annotations") or {}).get("leader"))
    return found


def _dcs_key(cluster: str, namespace: str, name: str, annotations: dict[str, str | None]) -> dict[str, Any]:
    """A Patroni DCS key, labelled as Patroni lists them."""
    labels = postgres.patroni_labels(cluster)
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
    }


def request_switchover(kube: Kube, cluster: str, namespace: str, leader: str, candidate: str) -> bool:
    """Ask Patroni's leader to hand over to `candidate` (the failover key, as `patronictl switchover`
    writes it); False if that very request is already waiting."""
    key = postgres.names(cluster)["failover"]
    live = kube.get("v1", "Endpoints", key, namespace)
    pending = ((live or {}).get("metadata") or {}).get("annotations") or {}
    if pending.get("leader") == leader and pending.get("member") == candidate:
        return False
    kube.apply(
        _dcs_key(cluster, namespace, key, {"leader": leader, "member": candidate}), manager=SWITCHOVER_MANAGER
    )
    log.info("%s/%s: switchover %s -> %s requested", namespace, cluster, leader, candidate)
    return True


def wanted_primary(obj: dict[str, Any], members: PostgresMembers) -> str | None:
    """The pod the annotation asks to lead, while another one does."""
    target = ((obj["metadata"].get("annotations") or {}).get(postgres.PRIMARY_ANNOTATION) or "").strip()
    if not target or members.primary is None or target == members.primary:
        return None
    return target


@dataclass(frozen=True)
class RollStep:
    action: str  # "delete" a pod, or "switchover" to a replica
    pod: str
    message: str


def next_roll_step(
    sts: dict[str, Any] | None, pods: list[dict[str, Any]], members: PostgresMembers, want: int
) -> RollStep | None:
    """One step of rolling the members onto the StatefulSet's new revision: replicas first, one at a
    time and only while every member is ready; the leader last, after a switchover to an updated
    replica (deleted right away when it has none)."""
    status = (sts or {}).get("status") or {}
    update = status.get("updateRevision")
    if not sts or not update or status.get("observedGeneration", 0) < sts["metadata"].get("generation", 0):
        return None
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    outdated = sorted(
        p["metadata"]["name"]
        for p in live
        if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) != update
    )
    if not outdated or len(live) < want or not all(pod_ready(p) for p in live):
        return None
    replicas = [p for p in outdated if p != members.primary]
    if replicas:
        return RollStep("delete", replicas[-1], f"restarting replica {replicas[-1]} on the new revision")
    leader = outdated[0]
    if members.replicas:
        candidate = members.replicas[0]
        return RollStep(
            "switchover", candidate, f"switchover {leader} -> {candidate} to roll the leader last"
        )
    return RollStep("delete", leader, f"restarting {leader}, the only member, on the new revision")


def config_hash(tier: DataTier) -> str:
    return content_hash(postgres.dcs_config(tier))


def sync_dynamic_config(
    kube: Kube, cluster: str, namespace: str, tier: DataTier, applied: str | None
) -> str | None:
    """Bring Patroni's dynamic configuration (the `-config` key) in line with the spec; returns the
    hash of the configuration now in place (None: Patroni has not bootstrapped the cluster yet, and
    will write the current one from its file when it does)."""
    want = config_hash(tier)
    if applied == want:
        return applied
    live = kube.get("v1", "Endpoints", postgres.names(cluster)["config"], namespace)
    stored = ((live or {}).get("metadata") or {}).get("annotations", {}).get("config")
    if stored is None:
        return applied
    current = json.loads(stored)
    ours = postgres.dcs_config(tier)
    merged = {
        **current,
        **ours,
        "postgresql": {
            **current.get("postgresql", {}),
            **ours["postgresql"],
            "parameters": {
                **current.get("postgresql", {}).get("parameters", {}),
                **ours["postgresql"]["parameters"],
            },
        },
    }
    if merged != current:
        body = {"metadata": {"annotations": {"config": json.dumps(merged, separators=(",", ":"))}}}
        kube.patch("v1", "Endpoints", postgres.names(cluster)["config"], namespace, body)
        log.info("%s/%s: Patroni's dynamic configuration updated", namespace, cluster)
    return want


def _move_leader(
    kube: Kube,
    obj: dict[str, Any],
    tier: DataTier,
    pods: list[dict[str, Any]],
    members: PostgresMembers,
    pending: str | None,
    asked: str | None,
    events: list[tuple[str, str, bool]],
) -> str | None:
    """One move of the lead or one member restarted: the switchover the annotation asks for, else
    a step of rolling the members. `asked`: the candidate the previous pass reported. Returns the
    switchover candidate now pending, if any."""
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    leader = members.primary or ""
    if pending and pending in members.replicas:  # one move at a time: ask again (a no-op while it waits)
        request_switchover(kube, name, namespace, leader, pending)
        return pending
    # A roll goes first: the annotation's pod may itself be waiting to be rolled.
    sts = kube.get("apps/v1", "StatefulSet", postgres.names(name)["pods"], namespace)
    step = next_roll_step(sts, pods, members, 1 + tier.replicas)
    if step is not None:
        events.append(("RollingMembers", step.message, False))
        if step.action == "delete":
            kube.delete("v1", "Pod", step.pod, namespace)
            return None
        request_switchover(kube, name, namespace, leader, step.pod)
        return step.pod
    target = wanted_primary(obj, members)
    if target and target not in members.replicas:
        if asked != target:  # said once per request
            ready = ", ".join(members.replicas) or "none"
            message = (
                f"{postgres.PRIMARY_ANNOTATION}={target}: not a ready replica (ready replicas: {ready}); "
                "switching over once it is"
            )
            events.append(("SwitchoverWaiting", message, True))
        return target
    if target:
        request_switchover(kube, name, namespace, leader, target)
        message = f"switchover {leader} -> {target} requested (annotation {postgres.PRIMARY_ANNOTATION})"
        events.append(("SwitchoverRequested", message, False))
    return target


@dataclass(frozen=True)
class PostgresState:
    members: PostgresMembers
    status: dict[str, Any]  # status.postgres
    events: list[tuple[str, str, bool]]  # (reason, message, warning)


def reconcile_postgres(
    kube: Kube,
    obj: dict[str, Any],
    tier: DataTier,
    pods: list[dict[str, Any]],
    previous: dict[str, Any],
    now: str,
    act: bool = True,
) -> PostgresState:
    """Observe the members (`pods`) and move the cluster one step toward what is asked (`act`: the
    spec was applied this pass; a paused or failed pass only observes)."""
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    members = observe_members(kube, name, namespace, pods)
    events: list[tuple[str, str, bool]] = []
    before, after = previous.get("primary"), members.primary
    # A switchover asked for earlier: done once its candidate leads (reported below), given up
    # once the candidate is no ready replica (the annotation, if it still says so, asks again).
    asked = previous.get("switchover")
    pending = asked if asked and (not after or (asked != after and asked in members.replicas)) else None
    if act and after:
        pending = _move_leader(kube, obj, tier, pods, members, pending, asked, events)
        applied = sync_dynamic_config(kube, name, namespace, tier, previous.get("dynamicConfigHash"))
    else:
        applied = previous.get("dynamicConfigHash")

    former, changed = previous.get("formerPrimary"), previous.get("lastPrimaryChange")
    if before and not after:
        former = before
        if members.labelled and not pending:
            events.append(("FailingOver", failing_over(before), True))
    if after and after != before:
        was = before or former
        if was and was != after:
            if asked == after:
                events.append(("SwitchedOver", f"leader {was} -> {after} (switchover)", False))
            else:
                events.append(("FailedOver", f"{after} promoted: leader {was} was lost", True))
            former = was
        changed = now
    status = {
        "primary": after,
        "replicas": list(members.replicas),
        "formerPrimary": former,
        "lastPrimaryChange": changed,
        "switchover": pending,
        "dynamicConfigHash": applied,
    }
    return PostgresState(members, {k: v for k, v in status.items() if v is not None}, events)
