"""Watch-fed caches of the BrainAIClusters and of every kind the operator owns: a pass reads from
memory, and a converged pass costs no API request.

One informer per kind (a thread: list, then watch from that list's resourceVersion, relisting when
the server says the version is gone) keeps `ObjectCache` equal to the API server's objects that carry
the operator's managed-by label (BrainAIClusters: all of them). Objects are stored trimmed to what a
pass reads (`trim`): at 1,000 clusters the cache is most of the operator's memory.

Each change is reported to `on_change(namespace, cluster)` only when it can change what a pass does:
the object's spec, data or metadata, or the few status fields status is computed from (`STATUS_KEYS`).
An HPA's metric readings, a BrainAICluster's own status and heartbeat-like condition timestamps never
trigger a pass.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import client as k8s

from brainai_operator import api
from brainai_operator.metrics import API_REQUESTS
from brainai_operator.resources.cluster import OWNED_KINDS
from brainai_operator.resources.common import INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL

log = logging.getLogger(__name__)

Kind = tuple[str, str]  # (apiVersion, kind)
ObjectKey = tuple[str, str]  # (namespace, name)
OnChange = Callable[[str, str, int | None], None]  # (namespace, cluster, its generation if it changed)

CLUSTER_KIND: Kind = (api.API_VERSION, api.KIND)
WATCH_TIMEOUT_S = 300  # the server ends a watch after this; the informer resumes from its last version
RETRY_S = (1.0, 30.0)  # first and longest pause after a failed list or watch
ABSENT_RETRY_S = 300.0  # a kind the server does not serve (its CRD not installed) is looked for again
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# Status fields a pass reads, per kind; every other status change is invisible to it.
STATUS_KEYS: dict[str, tuple[str, ...]] = {
    "Deployment": ("replicas", "readyReplicas", "updatedReplicas", "availableReplicas", "observedGeneration"),
    "StatefulSet": (
        "replicas",
        "readyReplicas",
        "currentReplicas",
        "updatedReplicas",
        "availableReplicas",
        "currentRevision",
        "updateRevision",
        "observedGeneration",
    ),
    "Job": ("active", "succeeded", "failed"),
    "HorizontalPodAutoscaler": ("currentReplicas", "desiredReplicas"),
    "Pod": ("phase",),
    "PersistentVolumeClaim": ("phase",),
}
# Kinds whose condition states status reads (an HPA's conditions say how its metrics went: never).
CONDITION_KINDS = frozenset({"Deployment", "StatefulSet", "Job", "Pod"})


def relevant_view(kind: str, obj: dict[str, Any]) -> bytes:
    """A digest of what of `obj` a pass can depend on: equal views mean no pass is needed."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    # A pod's annotations feed nothing, and Patroni rewrites its members' on every loop.
    keys = ("labels", "ownerReferences", "deletionTimestamp", "generation", "uid")
    view: dict[str, Any] = {
        "metadata": {k: meta.get(k) for k in (keys if kind == "Pod" else (*keys, "annotations"))},
        "rest": {k: v for k, v in obj.items() if k not in ("metadata", "status")},
        "status": {k: status.get(k) for k in STATUS_KEYS.get(kind, ())},
    }
    if kind in CONDITION_KINDS:
        # Condition types and states (not their timestamps) feed status messages.
        view["conditions"] = [
            (c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or []
        ]
    if kind == "Pod":
        view["containers"] = [
            (
                c.get("name"),
                c.get("ready"),
                c.get("restartCount"),
                sorted((c.get("state") or {}).items(), key=str),
            )
            for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
        ]
    if kind == api.KIND:
        view["rest"] = {"spec": obj.get("spec")}
    return _freeze(view)


def _condition(c: dict[str, Any]) -> dict[str, Any]:
    return {k: c[k] for k in ("type", "status", "reason", "message") if k in c}


def _container(c: dict[str, Any]) -> dict[str, Any]:
    return {k: c[k] for k in ("name", "ready", "restartCount", "state") if k in c}


def _replicas_owner(entry: dict[str, Any]) -> dict[str, Any]:
    """A managedFields entry cut to who applied and whether spec.replicas is theirs (the hand-off)."""
    out: dict[str, Any] = {k: entry[k] for k in ("manager", "operation") if k in entry}
    if "f:replicas" in (entry.get("fieldsV1") or {}).get("f:spec", {}):
        out["fieldsV1"] = {"f:spec": {"f:replicas": {}}}
    return out


def trim(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The stored form: spec and metadata as served (less managedFields and the last-applied
    annotation), and of status only what `relevant_view` compares. Deployments keep who owns
    spec.replicas; Pods lose their spec and annotations; a BrainAICluster keeps its whole status."""
    meta = dict(obj.get("metadata") or {})
    fields = meta.pop("managedFields", None)
    if kind == "Deployment" and fields:
        meta["managedFields"] = [_replicas_owner(e) for e in fields]
    annotations = meta.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    out = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    out["metadata"] = meta
    if kind == "Pod":
        out.pop("spec", None)
        meta.pop("annotations", None)
    status = obj.get("status")
    if status is None or kind == api.KIND:
        if status is not None:
            out["status"] = status
        return out
    kept = {k: status[k] for k in STATUS_KEYS.get(kind, ()) if k in status}
    if kind in CONDITION_KINDS and status.get("conditions"):
        kept["conditions"] = [_condition(c) for c in status["conditions"]]
    for key in ("initContainerStatuses", "containerStatuses") if kind == "Pod" else ():
        if status.get(key):
            kept[key] = [_container(c) for c in status[key]]
    out["status"] = kept
    return out


def _newer(candidate: dict[str, Any], current: dict[str, Any] | None) -> bool:
    """resourceVersions are etcd revisions here; if one is not a number, the candidate wins."""
    if current is None:
        return True
    new, old = candidate["metadata"].get("resourceVersion"), current["metadata"].get("resourceVersion")
    try:
        return int(new) >= int(old)
    except (TypeError, ValueError):
        return True


class ObjectCache:
    """Objects by kind and (namespace, name), with whether each kind's first list has completed.

    Reads of a kind that is not synced return None from `lookup`/`select`, so callers ask the API
    server instead; a synced kind answers from memory, absent objects included.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Kind, dict[ObjectKey, dict[str, Any]]] = {}
        self._views: dict[Kind, dict[ObjectKey, bytes]] = {}
        # (kind, namespace, instance label) -> keys: a pass lists one cluster's children in O(its own)
        self._by_owner: dict[tuple[Kind, str, str], set[ObjectKey]] = {}
        self._scopes: dict[Kind, set[str | None]] = {}  # namespaces each kind is listed in (None: all)
        self._listed: set[tuple[Kind, str | None]] = set()
        # (kind, key) -> (what we last applied, what the server returned at those paths)
        self._applied: dict[tuple[Kind, ObjectKey], tuple[bytes, bytes]] = {}

    def expect(self, kind: Kind, namespace: str | None) -> None:
        """An informer will list `kind` in `namespace` (None: all namespaces)."""
        self._scopes.setdefault(kind, set()).add(namespace)

    def synced(self, kind: Kind) -> bool:
        scopes = self._scopes.get(kind) or set()
        return bool(scopes) and all((kind, ns) in self._listed for ns in scopes)

    def lookup(self, kind: Kind, namespace: str | None, name: str) -> tuple[bool, dict[str, Any] | None]:
        """(True, object or None) when `kind` is synced, else (False, None)."""
        if not self.synced(kind):
            return False, None
        return True, self._objects.get(kind, {}).get((namespace or "", name))

    def select(
        self, kind: Kind, namespace: str | None, labels: dict[str, str]
    ) -> list[dict[str, Any]] | None:
        """Objects of `kind` in `namespace` (None: all) carrying every one of `labels`; None if not synced."""
        if not self.synced(kind):
            return None
        with self._lock:
            objects = self._objects.get(kind, {})
            owner = labels.get(INSTANCE_LABEL)
            if owner is not None and namespace is not None:
                keys = self._by_owner.get((kind, namespace, owner), set())
                items = [(k, objects[k]) for k in keys if k in objects]
            else:
                items = list(objects.items())
        return [
            obj
            for (ns, _), obj in items
            if (namespace is None or ns == namespace)
            and all((obj["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())
        ]

    def replace_all(
        self, kind: Kind, namespace: str | None, objects: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """A fresh list of `kind` in `namespace` (None: all): returns the objects that appeared,
        changed or went, for triggers."""
        fresh = {_key(o): trim(kind[1], o) for o in objects}
        views = {k: relevant_view(kind[1], o) for k, o in fresh.items()}
        with self._lock:
            objects_now = self._objects.setdefault(kind, {})
            views_now = self._views.setdefault(kind, {})
            scope = [k for k in objects_now if namespace is None or k[0] == namespace]
            changed = [o for k, o in fresh.items() if views_now.get(k) != views[k]]
            changed += [objects_now[k] for k in scope if k not in fresh]
            for k in scope:
                self._drop(kind, k)
            for k, o in fresh.items():
                self._put(kind, k, o, views[k])
            self._listed.add((kind, namespace))
        return changed

    def upsert(self, kind: Kind, obj: dict[str, Any]) -> bool:
        """Store `obj` unless an as-new version is there; True when a pass could now act differently."""
        key, stored = _key(obj), trim(kind[1], obj)
        view = relevant_view(kind[1], stored)
        with self._lock:
            current = self._objects.get(kind, {}).get(key)
            if not _newer(stored, current):
                return False
            changed = self._views.get(kind, {}).get(key) != view
            if current is not None:
                self._drop(kind, key)
            self._put(kind, key, stored, view)
        return changed

    def remove(self, kind: Kind, obj: dict[str, Any]) -> bool:
        key = _key(obj)
        with self._lock:
            gone = self._drop(kind, key)
            self._applied.pop((kind, key), None)
        return gone is not None

    def _put(self, kind: Kind, key: ObjectKey, obj: dict[str, Any], view: bytes) -> None:
        self._objects.setdefault(kind, {})[key] = obj
        self._views.setdefault(kind, {})[key] = view
        owner = (obj["metadata"].get("labels") or {}).get(INSTANCE_LABEL)
        if owner is not None:
            self._by_owner.setdefault((kind, key[0], owner), set()).add(key)

    def _drop(self, kind: Kind, key: ObjectKey) -> dict[str, Any] | None:
        obj = self._objects.get(kind, {}).pop(key, None)
        self._views.get(kind, {}).pop(key, None)
        owner = ((obj or {}).get("metadata", {}).get("labels") or {}).get(INSTANCE_LABEL)
        if owner is not None:
            keys = self._by_owner.get((kind, key[0], owner))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_owner[(kind, key[0], owner)]
        return obj

    def clusters(self) -> list[ObjectKey] | None:
        """Every BrainAICluster's (namespace, name), or None before their first list."""
        if not self.synced(CLUSTER_KIND):
            return None
        with self._lock:
            return list(self._objects.get(CLUSTER_KIND, {}))

    # -- applies ----------------------------------------------------------------------------------
    def converged(self, desired: dict[str, Any]) -> bool:
        """Whether applying `desired` would change nothing: the cached object holds its values, as
        sent or as the server normalised them when we last applied exactly this."""
        kind = (desired["apiVersion"], desired["kind"])
        synced, live = self.lookup(kind, desired["metadata"].get("namespace"), desired["metadata"]["name"])
        if not synced or live is None:
            return False
        view = project(live, desired)
        if view == desired:
            return True
        return self._applied.get((kind, _key(desired))) == (_freeze(desired), _freeze(view))

    def record_apply(self, desired: dict[str, Any], returned: dict[str, Any]) -> None:
        """Remember what the server made of `desired`, and store its answer (a write-through)."""
        kind = (desired["apiVersion"], desired["kind"])
        self._applied[(kind, _key(desired))] = (_freeze(desired), _freeze(project(returned, desired)))
        self.upsert(kind, returned)


_ABSENT = "<absent>"


def project(live: Any, shape: Any) -> Any:
    """`live` cut down to the paths `shape` has: dicts by key, lists element-wise when as long."""
    if isinstance(shape, dict) and isinstance(live, dict):
        return {k: project(live[k], v) if k in live else _ABSENT for k, v in shape.items()}
    if isinstance(shape, list) and isinstance(live, list) and len(shape) == len(live):
        return [project(item, s) for item, s in zip(live, shape, strict=True)]
    return live


def _freeze(value: Any) -> bytes:
    """A short digest of `value`: the cache keeps these per object, not the serialised text."""
    return hashlib.blake2b(json.dumps(value, sort_keys=True, default=str).encode(), digest_size=16).digest()


def _key(obj: dict[str, Any]) -> ObjectKey:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


def owner_of(kind: Kind, obj: dict[str, Any]) -> tuple[str, str, int | None] | None:
    """The BrainAICluster a change concerns (itself, with its generation, or the instance label of a
    child), or None for an object of no cluster."""
    meta = obj.get("metadata") or {}
    if kind == CLUSTER_KIND:
        return (meta.get("namespace") or "", meta["name"], meta.get("generation"))
    cluster = (meta.get("labels") or {}).get(INSTANCE_LABEL)
    return (meta.get("namespace") or "", cluster, None) if cluster else None


def plural(kind: str) -> str:
    """The resource name of a kind the operator watches."""
    return {"NetworkPolicy": "networkpolicies", api.KIND: api.PLURAL}.get(kind, kind.lower() + "s")


def watched_kinds() -> list[tuple[Kind, str]]:
    """BrainAIClusters, every kind a pass reads or owns except PersistentVolumeClaims (those made
    from volume claim templates carry no label of ours), and their resource names."""
    kinds = [CLUSTER_KIND, *OWNED_KINDS, ("v1", "Pod")]
    return [(kind, plural(kind[1])) for kind in kinds]


def informer_client(api_client: k8s.ApiClient, streams: int) -> k8s.ApiClient:
    """A client of its own for the watch streams, with a connection for each kept open."""
    configuration = copy.copy(api_client.configuration)
    configuration.connection_pool_maxsize = streams + 4
    return k8s.ApiClient(configuration)


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class ListFailed(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {body}")


class Informer(threading.Thread):
    """List and watch one kind into `cache`, calling `on_change` for every relevant change."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        kind: Kind,
        path: str,
        namespace: str | None,
        cache: ObjectCache,
        on_change: OnChange,
        selector: str | None,
    ) -> None:
        super().__init__(name=f"informer-{kind[1]}", daemon=True)
        self.api_client = api_client
        self.kind = kind
        self.path = path
        self.namespace = namespace
        cache.expect(kind, namespace)
        self.cache = cache
        self.on_change = on_change
        self.selector = selector
        self.stopped = threading.Event()
        self.absent = False  # the server does not serve this kind (a CRD not installed): retried

    def run(self) -> None:
        pause = RETRY_S[0]
        while not self.stopped.is_set():
            try:
                version = self._list()
                self.absent = False
                pause = RETRY_S[0]
                while not self.stopped.is_set():
                    version = self._watch(version)
            except Gone:
                continue
            except Exception as exc:  # keep the cache alive through API server restarts
                if self.stopped.is_set():
                    return
                self.absent = getattr(exc, "status", None) == 404
                level = logging.DEBUG if self.absent else logging.WARNING
                wait = ABSENT_RETRY_S if self.absent else pause
                log.log(level, "informer %s: %s; retrying in %.0fs", self.kind[1], exc, wait)
                self.stopped.wait(wait)
                pause = min(pause * 2, RETRY_S[1])

    def _query(self, **extra: Any) -> list[tuple[str, Any]]:
        query = [(k, v) for k, v in extra.items() if v is not None]
        return query + ([("labelSelector", self.selector)] if self.selector else [])

    def _get(self, query: list[tuple[str, Any]], timeout: float | None) -> Any:
        """The raw (streaming) urllib3 response of a GET on this informer's path."""
        method, url, headers, _, _ = self.api_client.param_serialize(
            "GET",
            self.path,
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        API_REQUESTS.labels("watch" if ("watch", "true") in query else "list").inc()
        response = self.api_client.call_api(method, url, header_params=headers, _request_timeout=timeout)
        if response.status >= 400:
            raise ListFailed(response.status, response.read()[:300].decode("utf-8", "replace"))
        return response.response

    def _list(self) -> str:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            body = json.loads(self._get(self._query(limit=500, **{"continue": token}), 60).data)
            items += body.get("items") or []
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                break
        group_version, kind = self.kind
        for item in items:  # list items carry neither
            item.setdefault("apiVersion", group_version)
            item.setdefault("kind", kind)
        for obj in self.cache.replace_all(self.kind, self.namespace, items):
            self._notify(obj)
        return str(body["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str:
        query = self._query(
            watch="true", resourceVersion=version, allowWatchBookmarks="true", timeoutSeconds=WATCH_TIMEOUT_S
        )
        response = self._get(query, WATCH_TIMEOUT_S + 30)
        try:
            for event in _events(response):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone
                    raise RuntimeError(f"watch error: {obj.get('message')}")
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if kind == "BOOKMARK":
                    continue
                if kind == "DELETED":
                    if self.cache.remove(self.kind, obj):
                        self._notify(obj)
                elif self.cache.upsert(self.kind, obj):
                    self._notify(obj)
                if self.stopped.is_set():
                    break
        finally:
            response.release_conn()
        return version

    def _notify(self, obj: dict[str, Any]) -> None:
        owner = owner_of(self.kind, obj)
        if owner is not None:
            self.on_change(*owner)


def _events(response: Any) -> Iterator[dict[str, Any]]:
    pending = b""
    for chunk in response.stream(amt=None, decode_content=False):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)


class Informers:
    """The informers of one operator process and the cache they fill."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        kinds: list[tuple[Kind, str]],
        on_change: OnChange,
        namespaces: list[str] | None = None,
    ) -> None:
        """`kinds`: each kind with its resource name, e.g. (("apps/v1", "Deployment"), "deployments")."""
        self.cache = ObjectCache()
        self.threads: list[Informer] = []
        for kind, plural in kinds:
            prefix = f"/apis/{kind[0]}" if "/" in kind[0] else f"/api/{kind[0]}"
            selector = None if kind == CLUSTER_KIND else f"{MANAGED_BY_LABEL}={MANAGED_BY}"
            scopes: list[str | None] = list(namespaces) if namespaces else [None]
            for ns in scopes:
                path = f"{prefix}/namespaces/{ns}/{plural}" if ns else f"{prefix}/{plural}"
                self.threads.append(Informer(api_client, kind, path, ns, self.cache, on_change, selector))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def wait_synced(self, timeout: float) -> bool:
        """Until every served kind has been listed once (kinds the server lacks do not count)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.cache.synced(t.kind) or t.absent for t in self.threads):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        for thread in self.threads:
            thread.stopped.set()
