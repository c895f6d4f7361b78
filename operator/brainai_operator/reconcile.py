"""One reconcile pass: read the BrainAICluster, converge its children, write its status.

Level-triggered and idempotent: every pass builds the whole desired set from the spec, applies what
differs from the cached children with server-side apply under one field manager, deletes owned
children no longer desired, and patches status only when it changed. A pass over a converged
cluster writes nothing and, with the informers' cache, reads nothing from the API server.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import secrets
from collections.abc import Callable
from typing import Any

from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError
from pydantic import ValidationError

from brainai_common.engine_config import ConfigError
from brainai_operator import api, autopilot, backups, certificates, immutable, postgres_ha
from brainai_operator.advisor import Advice
from brainai_operator.client import FIELD_MANAGER, Kube
from brainai_operator.clock import rfc3339, utcnow
from brainai_operator.resources import backup, engine, pgbackrest, postgres, redis
from brainai_operator.resources.cluster import OWNED_KINDS, build_desired
from brainai_operator.resources.common import (
    APPLIED_HASH_ANNOTATION,
    COMPONENT_LABEL,
    CONFIG_HASH_ANNOTATION,
    KEEP_WITH_DATA_ANNOTATION,
    content_hash,
    engine_name,
    owned_selector,
)
from brainai_operator.status import (
    MESSAGE_LIMIT,
    Tier,
    advisor_state,
    compute_status,
    engine_tier,
    explain,
    external_tier,
    failed_status,
    postgres_tier,
    redis_tier,
)
from brainai_operator.strategies import OperatorDefaults, Resolved, resolve

log = logging.getLogger(__name__)

REPLICAS_HANDOFF_MANAGER = f"{FIELD_MANAGER}-replicas-handoff"
MONITORING_API = "monitoring.coreos.com/v1"
OPTIONAL_APIS = {MONITORING_API}  # served only where the Prometheus Operator is installed


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _manager_owns_replicas(obj: dict[str, Any], manager: str) -> bool:
    return any(
        entry.get("manager") == manager
        and entry.get("operation") == "Apply"
        and "f:replicas" in (entry.get("fieldsV1") or {}).get("f:spec", {})
        for entry in obj["metadata"].get("managedFields") or []
    )


def hand_off_replicas(kube: Kube, live: dict[str, Any]) -> None:
    """Before dropping `replicas` from our apply, let a second manager hold it.

    Server-side apply deletes a field its only owner stops sending; the Deployment would fall to
    1 replica until the HPA noticed. Another manager keeping the current value avoids that dip.
    """
    meta = live["metadata"]
    if _manager_owns_replicas(live, FIELD_MANAGER):
        kube.apply(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                "spec": {"replicas": live["spec"]["replicas"]},
            },
            manager=REPLICAS_HANDOFF_MANAGER,
        )


def _hpa_floor(desired: list[dict[str, Any]], deployment: str) -> int | None:
    for obj in desired:
        if obj["kind"] == "HorizontalPodAutoscaler" and obj["spec"]["scaleTargetRef"]["name"] == deployment:
            return obj["spec"]["minReplicas"]
    return None


class ApplyFailed(RuntimeError):
    """The API server did not take a child object; the message says which and why (for status).
    `refused`: the object itself was rejected (400/403/422), so only a spec change can help;
    otherwise the server failed (a 500, a timeout) and a retry may succeed."""

    def __init__(self, obj: dict[str, Any], reason: str, refused: bool):
        self.refused = refused
        super().__init__(f"{obj['kind']}/{obj['metadata']['name']}: {reason}"[:1024])

    @classmethod
    def from_api(cls, obj: dict[str, Any], exc: DynamicApiError) -> ApplyFailed:
        reason = exc.summary() if hasattr(exc, "summary") else str(exc)
        return cls(obj, reason, exc.status in (400, 403, 422))


def stamp_applied_hash(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` carrying a hash of itself: a child whose annotation differs was applied from another
    desired state, so a field the operator stopped sending (which the live object still holds)
    is noticed and released by an apply, across restarts too."""
    annotations = {
        k: v for k, v in (obj["metadata"].get("annotations") or {}).items() if k != APPLIED_HASH_ANNOTATION
    }
    bare = {**obj, "metadata": {**obj["metadata"], "annotations": annotations}}
    digest = content_hash(bare)
    return {
        **obj,
        "metadata": {**obj["metadata"], "annotations": {**annotations, APPLIED_HASH_ANNOTATION: digest}},
    }


def apply_desired(kube: Kube, owner: dict[str, Any], desired: list[dict[str, Any]]) -> list[str]:
    """Apply every child that differs from what the server holds; returns what had to be replaced
    rather than updated (see `immutable`)."""
    ref = owner_reference(owner)
    replaced: list[str] = []
    for obj in desired:
        kept = (obj["metadata"].get("annotations") or {}).get(KEEP_WITH_DATA_ANNOTATION) == "true"
        obj["metadata"]["ownerReferences"] = [] if kept else [ref]
        live = None
        if obj["kind"] == "Deployment" and "replicas" not in obj["spec"]:
            meta = obj["metadata"]
            live = kube.get("apps/v1", "Deployment", meta["name"], meta["namespace"])
            if live is None:
                # Born at the HPA's floor rather than 1; the next pass hands the field over.
                obj = {**obj, "spec": {**obj["spec"], "replicas": _hpa_floor(desired, meta["name"]) or 1}}
        obj = stamp_applied_hash(obj)
        if kube.converged(obj):
            continue
        if live is not None:
            hand_off_replicas(kube, live)
        try:
            kube.apply(obj)
        except NotFoundError as exc:
            if obj["apiVersion"] not in OPTIONAL_APIS:
                raise ApplyFailed.from_api(obj, exc) from exc
            kube.forget(obj["apiVersion"], obj["kind"])  # its CRD went away since we last looked
        except DynamicApiError as exc:
            if exc.status != 422:
                raise ApplyFailed.from_api(obj, exc) from exc
            try:
                done = immutable.replace(kube, obj)
            except immutable.CannotReplace as why:
                raise ApplyFailed(obj, str(why), refused=True) from exc
            if done is None:
                raise ApplyFailed.from_api(obj, exc) from exc
            replaced.append(done)
    return replaced


def prune(kube: Kube, owner: dict[str, Any], desired: list[dict[str, Any]]) -> list[str]:
    """Delete children we made earlier that the spec no longer asks for."""
    keep = {(o["kind"], o["metadata"]["name"]) for o in desired}
    meta = owner["metadata"]
    removed = []
    for api_version, kind in OWNED_KINDS:
        if api_version in OPTIONAL_APIS and not kube.serves(api_version, kind):
            continue
        for child in kube.list(api_version, kind, meta["namespace"], owned_selector(meta["name"])):
            cmeta = child["metadata"]
            ours = any(r.get("uid") == meta["uid"] for r in cmeta.get("ownerReferences") or [])
            if ours and (kind, cmeta["name"]) not in keep:
                kube.delete(api_version, kind, cmeta["name"], cmeta["namespace"])
                removed.append(f"{kind}/{cmeta['name']}")
    return removed


def load_passwords(live: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, str]:
    """The passwords already in the `live` Secret, and new random ones for any key it lacks."""
    data = (live or {}).get("data") or {}
    return {k: base64.b64decode(data[k]).decode() if k in data else secrets.token_urlsafe(24) for k in keys}


def load_certificate(kube: Kube, name: str, namespace: str) -> dict[str, str]:
    """The backups' TLS material already in its Secret, or a new CA and certificate."""
    data = (kube.get("v1", "Secret", pgbackrest.names(name)["tls"], namespace) or {}).get("data") or {}
    if all(k in data for k in certificates.KEYS):
        return {k: base64.b64decode(data[k]).decode() for k in certificates.KEYS}
    return certificates.issue(pgbackrest.TLS_NAME, backup.tls_dns_names(name, namespace), utcnow())


class MajorVersionChange(RuntimeError):
    """The primary's data directory was made by another PostgreSQL major version than the image now
    asked for, which cannot read it."""


def check_postgres_major(kube: Kube, name: str, namespace: str, r: Resolved) -> None:
    if not r.postgres or r.postgres.external:
        return
    live = kube.get("apps/v1", "StatefulSet", postgres.names(name)["pods"], namespace)
    containers = ((live or {}).get("spec", {}).get("template", {}).get("spec", {}) or {}).get(
        "containers"
    ) or []
    if not containers:
        return
    running, wanted = postgres.major_version(containers[0]["image"]), postgres.major_version(r.postgres.image)
    if running and wanted and running != wanted:
        raise MajorVersionChange(
            f"the PostgreSQL members run major version {running} ({containers[0]['image']}); "
            f"{r.postgres.image} is {wanted} and cannot read its data directory: keep a {running}.x image "
            "(spec.postgres.image or the operator's --postgres-image); upgrade by dump and restore"
        )


class CredentialsMissing(RuntimeError):
    """Data exists whose passwords were in a Secret that is gone: a new password would lock the
    engines and replicas out of it, so nothing is minted and status says what to do."""


def restore_completed(obj: dict[str, Any]) -> bool:
    restore = ((obj.get("status") or {}).get("postgres") or {}).get("restore") or {}
    return bool(restore.get("completedAt"))


class RestoreSourceMissing(RuntimeError):
    """A restore whose source repository claim is not there: the members would wait on a volume
    that never comes, so nothing is built until it does."""


def check_restore_source(kube: Kube, name: str, namespace: str, r: Resolved) -> None:
    """Before the database exists only: a restored one no longer reads the source."""
    restore = r.postgres.restore if r.postgres else None
    if restore is None or restore.s3 is not None:
        return
    if kube.get("v1", "PersistentVolumeClaim", postgres.first_claim(name), namespace) is not None:
        return
    claim = backup.repo_claim(restore.from_cluster)
    if kube.get("v1", "PersistentVolumeClaim", claim, namespace) is None:
        raise RestoreSourceMissing(
            f"spec.postgres.restore.fromCluster: PersistentVolumeClaim {claim}, the repository of "
            f"{restore.from_cluster}'s backups, is not in namespace {namespace}; nothing is built until it is"
        )


def tier_passwords(kube: Kube, name: str, namespace: str, r: Resolved) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    if r.postgres and not r.postgres.external:
        pg = postgres.names(name)
        live = kube.get("v1", "Secret", pg["secret"], namespace)
        if live is None:
            claim = postgres.first_claim(name)
            if kube.get("v1", "PersistentVolumeClaim", claim, namespace) is not None:
                raise CredentialsMissing(
                    f"PersistentVolumeClaim {claim} holds a PostgreSQL database whose passwords were in "
                    f"Secret {pg['secret']}, which is gone: restore that Secret (keys "
                    f"{', '.join(postgres.SECRET_KEYS)}), or delete the claim to start with an empty database"
                )
        found["postgres"] = load_passwords(live, postgres.SECRET_KEYS)
        if r.postgres.backup or r.postgres.restore:
            found["pgbackrest"] = load_certificate(kube, name, namespace)
    if r.redis and not r.redis.external:
        live = kube.get("v1", "Secret", redis.names(name)["secret"], namespace)
        found["redis"] = load_passwords(live, redis.SECRET_KEYS)
    return found


def redis_nodes(kube: Kube, name: str, namespace: str, r: Resolved) -> int | None:
    if not r.redis or r.redis.external:
        return None
    return redis.nodes_to_keep(
        r.redis.replicas,
        kube.get("apps/v1", "StatefulSet", redis.names(name)["nodes"], namespace),
        kube.get("batch/v1", "Job", redis.cluster_job_name(name, r.redis.replicas), namespace),
    )


def observe_data_tiers(
    kube: Kube, name: str, namespace: str, r: Resolved, pg: postgres_ha.PostgresState | None
) -> list[Tier]:
    tiers = []
    if r.postgres and r.postgres.external:
        tiers.append(external_tier("PostgresReady", "PostgreSQL"))
    elif r.postgres and pg:
        tiers.append(
            postgres_tier(
                kube.get("apps/v1", "StatefulSet", postgres.names(name)["pods"], namespace),
                pg.members,
                r.postgres.replicas,
                pg.status.get("formerPrimary"),
                pg.status.get("switchover"),
                restoring_from=r.postgres.restore.from_cluster
                if r.postgres.restore and not (pg.status.get("restore") or {}).get("completedAt")
                else None,
            )
        )
    if r.redis and r.redis.external:
        tiers.append(external_tier("RedisReady", "Redis Cluster"))
    elif r.redis:
        tiers.append(
            redis_tier(
                kube.get("apps/v1", "StatefulSet", redis.names(name)["nodes"], namespace),
                kube.get("batch/v1", "Job", redis.cluster_job_name(name, r.redis.replicas), namespace),
                r.redis.replicas,
            )
        )
    return tiers


TIER_COMPONENTS = {
    "PostgresReady": (postgres.COMPONENT,),
    "RedisReady": (redis.COMPONENT, redis.JOB_COMPONENT),
}


def pods_by_component(kube: Kube, name: str, namespace: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for pod in kube.list("v1", "Pod", namespace, owned_selector(name)):
        component = (pod["metadata"].get("labels") or {}).get(COMPONENT_LABEL, "")
        found.setdefault(component, []).append(pod)
    return found


def monitoring_state(resolved: Resolved, crds: bool) -> tuple[bool, str, str] | None:
    """The MonitoringReady condition: advisory, since the engines serve without the Prometheus Operator."""
    if not resolved.monitoring:
        return None
    if crds:
        return True, "Applied", "ServiceMonitor and PrometheusRule applied"
    return (
        False,
        "CRDsMissing",
        f"monitoring.enabled is true but {MONITORING_API} ServiceMonitor/PrometheusRule are not served: "
        "install the Prometheus Operator's CRDs and the operator creates both",
    )


def _previous_autopilot(previous: dict[str, Any]) -> api.AutopilotStatus | None:
    found = (previous.get("recommendations") or {}).get("autopilot")
    return api.AutopilotStatus.model_validate(found) if found else None


def converge(
    kube: Kube, obj: dict[str, Any], resolved: Resolved
) -> tuple[tuple[bool, str, str] | None, tuple[str, str, ApplyFailed | None] | None]:
    """Apply what `resolved` asks for and prune what it no longer does. Returns the MonitoringReady
    state and, when the children could not be converged, (reason, message, the refusal to re-raise
    after status is written)."""
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    monitoring_crds = bool(resolved.monitoring) and all(
        kube.serves(MONITORING_API, kind) for kind in ("ServiceMonitor", "PrometheusRule")
    )
    monitoring = monitoring_state(resolved, monitoring_crds)
    try:
        check_postgres_major(kube, name, namespace, resolved)
        check_restore_source(kube, name, namespace, resolved)
        passwords = tier_passwords(kube, name, namespace, resolved)
        desired = build_desired(
            name,
            namespace,
            resolved,
            passwords,
            monitoring_crds=monitoring_crds,
            redis_nodes=redis_nodes(kube, name, namespace, resolved),
            restored=restore_completed(obj),
        )
        replaced = apply_desired(kube, obj, desired)
    except CredentialsMissing as exc:
        return monitoring, ("CredentialsMissing", str(exc), None)
    except MajorVersionChange as exc:
        return monitoring, ("PostgresMajorVersionChange", str(exc), None)
    except RestoreSourceMissing as exc:
        return monitoring, ("RestoreSourceMissing", str(exc), None)
    except ApplyFailed as exc:
        return monitoring, ("ApplyFailed" if exc.refused else "APIServerError", str(exc), exc)
    for done in replaced:
        kube.event(obj, "Replaced", done)
    removed = prune(kube, obj, desired)
    if removed:
        kube.event(obj, "Pruned", f"deleted children no longer desired: {', '.join(removed)}")
    return monitoring, None


def reconcile_cluster(
    kube: Kube,
    namespace: str,
    name: str,
    advice: Advice | None = None,
    clock: Callable[[], dt.datetime] = utcnow,
    defaults: OperatorDefaults | None = None,
) -> str | None:
    """Converge one BrainAICluster; returns its phase, or None when it is gone or going.

    `advice` is the advisor's latest result for this cluster (None: none yet). This pass is the only
    writer of status, so recommendations reach status here, and autopilot acts here.
    """
    now = clock()
    obj = kube.get(api.API_VERSION, api.KIND, name, namespace)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return None  # children go with it through ownerReferences
    meta = obj["metadata"]
    generation = meta.get("generation", 0)
    previous = obj.get("status") or {}
    error: tuple[str, str] | None = None
    spec: api.BrainAIClusterSpec | None = None
    try:
        spec = api.BrainAIClusterSpec.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        error = ("InvalidSpec", api.describe_invalid_spec(exc))

    paused = bool(spec and spec.paused)
    resolved: Resolved | None = None
    if spec:
        try:
            resolved = resolve(spec, defaults)
        except ConfigError as exc:
            error = ("InvalidConfig", str(exc))
    refused: ApplyFailed | None = None
    metrics, recommendations = advisor_state(advice, previous)
    pilot_changes: list[str] = []
    if spec and resolved and not paused:
        pilot = autopilot.plan(spec, resolved, recommendations, _previous_autopilot(previous), now)
        resolved, pilot_changes = pilot.resolved, pilot.changes
        if recommendations is not None:
            recommendations = recommendations.model_copy(update={"autopilot": pilot.status})
    monitoring: tuple[bool, str, str] | None = None
    if resolved and not paused:
        monitoring, failure = converge(kube, obj, resolved)
        if failure is not None:
            error, refused = (failure[0], failure[1]), failure[2]

    deploy = kube.get("apps/v1", "Deployment", engine_name(name), namespace)
    config_hash = ((deploy or {}).get("metadata", {}).get("annotations") or {}).get(CONFIG_HASH_ANNOTATION)
    # Autopilot may run another strategy than the spec names: status reports the one in effect.
    in_effect = resolved or spec
    strategy = str(in_effect.strategy) if in_effect else previous.get("strategy", "")
    # Pods are listed once a pass, and only when needed: Patroni's roles are on its pods, and a tier
    # that is not ready is explained by its pods.
    pods: dict[str, list[dict[str, Any]]] | None = None
    pg: postgres_ha.PostgresState | None = None
    backed_up: tuple[bool, str, str] | None = None
    if resolved and resolved.postgres and not resolved.postgres.external:
        pods = pods_by_component(kube, name, namespace)
        pg = postgres_ha.reconcile_postgres(
            kube,
            obj,
            resolved.postgres,
            pods.get(postgres.COMPONENT, []),
            previous.get("postgres") or {},
            rfc3339(now),
            act=not (paused or error),
        )
        backed_up = backups.reconcile_backups_and_restore(
            kube,
            obj,
            resolved.postgres,
            pods,
            pg,
            previous.get("postgres") or {},
            rfc3339(now),
            act=not (paused or error),
        )
    tiers = observe_data_tiers(kube, name, namespace, resolved, pg) if resolved else []
    engine_pods = None
    if resolved and not paused and not (engine_tier(deploy).ready and all(t.ready for t in tiers)):
        if pods is None:
            pods = pods_by_component(kube, name, namespace)
        engine_pods = pods.get(engine.COMPONENT, [])
        tiers = [
            explain(t, [p for c in TIER_COMPONENTS.get(t.condition, ()) for p in pods.get(c, [])])
            for t in tiers
        ]
    status = compute_status(
        generation,
        strategy,
        deploy,
        previous,
        rfc3339(now),
        paused=paused,
        error=error,
        config_hash=config_hash,
        data_tiers=tiers,
        metrics=metrics,
        recommendations=recommendations,
        engine_pods=engine_pods,
        monitoring=monitoring,
        postgres=pg.status if pg else None,
        backup=backed_up,
    )
    for reason, message, warning in pg.events if pg else ():
        kube.event(obj, reason, message, warning=warning)
    if status != previous:
        kube.patch_status(api.API_VERSION, api.KIND, name, namespace, merge_patch(previous, status))
        announce(kube, obj, previous, status)
        for change in pilot_changes:
            kube.event(obj, "AutopilotChanged", f"autopilot: {change} (from status.recommendations)")
        if status["phase"] != previous.get("phase"):
            log.info("%s/%s: phase %s -> %s", namespace, name, previous.get("phase"), status["phase"])
    if refused:
        kube.event(obj, error[0] if error else "ApplyFailed", str(refused), warning=True)
        raise refused  # status says why; the controller retries with backoff
    return status["phase"]


def in_flight(status: dict[str, Any]) -> bool:
    """Whether a pass started something that only a later look can see the end of."""
    return bool((status.get("postgres") or {}).get("switchover"))


def merge_patch(previous: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """`status` as a JSON merge patch over `previous`: a key it no longer has is sent as null (merge
    patching leaves absent keys as they were)."""
    patch: dict[str, Any] = dict(status)
    for key, old in previous.items():
        if key not in status:
            patch[key] = None
        elif isinstance(old, dict) and isinstance(status[key], dict):
            patch[key] = merge_patch(old, status[key])
    return patch


def announce(kube: Kube, obj: dict[str, Any], previous: dict[str, Any], status: dict[str, Any]) -> None:
    """Events for transitions a user wants in `kubectl describe`."""
    before, after = previous.get("phase"), status["phase"]
    if previous.get("strategy") and previous.get("strategy") != status.get("strategy"):
        kube.event(
            obj,
            "StrategyChanged",
            f"strategy {previous['strategy']} -> {status['strategy']}: rolling engine pods",
        )
    if before != after:
        # Paused says why it is paused; every other phase says what Ready says.
        says = "Progressing" if after == "Paused" else "Ready"
        message = next(c for c in status["conditions"] if c["type"] == says)["message"]
        change = f"{before} -> {after}" if before else after
        kube.event(obj, f"Phase{after}", f"phase {change}: {message}", warning=after == "Degraded")


def failure_summary(exc: BaseException) -> str:
    """One line for a failed pass: the API server's own summary when it answered."""
    if isinstance(exc, DynamicApiError):
        return exc.summary()
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def record_failure(
    kube: Kube, obj: dict[str, Any], exc: BaseException, clock: Callable[[], dt.datetime] = utcnow
) -> None:
    """A pass that failed before it could write status still leaves Ready=False and a Warning event
    saying why. Best effort: the API server may be what failed."""
    if obj["metadata"].get("deletionTimestamp"):
        return
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    previous = obj.get("status") or {}
    message = f"reconcile failed: {failure_summary(exc)}"[:MESSAGE_LIMIT]
    status = failed_status(previous, obj["metadata"].get("generation", 0), message, rfc3339(clock()))
    if status != previous:
        kube.patch_status(api.API_VERSION, api.KIND, name, namespace, status)
        kube.event(obj, "ReconcileError", message, warning=True)
