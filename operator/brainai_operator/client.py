"""All Kubernetes API I/O of the operator, in one place.

A thin layer over the dynamic client: server-side apply, list by label, delete, status patch and
events. Everything else in the operator is pure and takes or returns plain dicts. With a watch-fed
`ObjectCache` attached (`informers`), reads of a synced kind come from memory, an apply whose values
the cached object already holds is skipped, and what the server answers to a write is cached at once.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import secrets
import time
from functools import cache
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

from brainai_operator.clock import rfc3339, utcnow
from brainai_operator.informers import ObjectCache
from brainai_operator.metrics import API_REQUESTS, SKIPPED_APPLIES

log = logging.getLogger(__name__)

FIELD_MANAGER = "brain-ai-operator"


def load_api_client(connections: int | None = None) -> k8s.ApiClient:
    """In-cluster service account when running in a pod, else the local kubeconfig. `connections`:
    how many to keep open, one per thread that calls at once (a request past the pool's size would
    open, and pay a TLS handshake for, a connection of its own)."""
    try:
        k8s_config.load_incluster_config()
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()
    configuration = k8s.Configuration.get_default_copy()
    if connections is not None:
        configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, connections)
    return k8s.ApiClient(configuration)


class Kube:
    def __init__(self, api_client: k8s.ApiClient | None = None, objects: ObjectCache | None = None) -> None:
        self.api_client = api_client or load_api_client()
        self.dynamic = DynamicClient(self.api_client)
        self._resource = cache(self._lookup)
        self._serves: dict[tuple[str, str], tuple[bool, float]] = {}
        self.objects = objects

    def _lookup(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def resource(self, api_version: str, kind: str) -> Any:
        return self._resource(api_version, kind)

    def serves(self, api_version: str, kind: str, ttl: float = 15.0) -> bool:
        """Whether the API server serves this kind now (CRDs come and go: answers expire after `ttl`).

        Asks the group-version endpoint itself: the discovery cache would keep a deleted CRD.
        """
        key = (api_version, kind)
        if self.objects is not None and self.objects.synced(key):
            return True  # listed by an informer; a kind not (yet) listed is asked for below
        known = self._serves.get(key)
        if known and time.monotonic() - known[1] < ttl:
            return known[0]
        path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        API_REQUESTS.labels("get").inc()
        try:
            listing = self.dynamic.request("GET", path)
            answer = any(r.kind == kind for r in listing.resources)
        except NotFoundError:
            answer = False
        self._serves[key] = (answer, time.monotonic())
        return answer

    def forget(self, api_version: str, kind: str) -> None:
        """Record that a kind just turned out not to be served (e.g. its CRD was deleted)."""
        self._serves[(api_version, kind)] = (False, time.monotonic())

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        if self.objects is not None:
            synced, found = self.objects.lookup((api_version, kind), namespace, name)
            if synced:
                return copy.deepcopy(found)
        API_REQUESTS.labels("get").inc()
        try:
            return self.resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        labels = _equality_selector(selector)
        if self.objects is not None and labels is not None:
            cached = self.objects.select((api_version, kind), namespace, labels)
            if cached is not None:
                return copy.deepcopy(cached)
        API_REQUESTS.labels("list").inc()
        found = self.resource(api_version, kind).get(namespace=namespace, label_selector=selector)
        return found.to_dict().get("items", [])

    def converged(self, obj: dict[str, Any]) -> bool:
        """Whether applying `obj` would change nothing, judged from the cache (False without one)."""
        if self.objects is not None and self.objects.converged(obj):
            SKIPPED_APPLIES.inc()
            return True
        return False

    def apply(self, obj: dict[str, Any], manager: str = FIELD_MANAGER) -> dict[str, Any]:
        """Server-side apply; `force` takes back fields someone else changed in what we own."""
        meta = obj["metadata"]
        res = self.resource(obj["apiVersion"], obj["kind"])
        API_REQUESTS.labels("apply").inc()
        applied: dict[str, Any] = res.server_side_apply(
            body=obj,
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager=manager,
            force_conflicts=True,
        ).to_dict()
        if self.objects is not None and manager == FIELD_MANAGER:
            self.objects.record_apply(obj, applied)
        return applied

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None, propagation: str = "Background"
    ) -> None:
        """Delete; `propagation` Orphan leaves the object's dependents (e.g. a StatefulSet's pods)."""
        API_REQUESTS.labels("delete").inc()
        with contextlib.suppress(NotFoundError):
            self.resource(api_version, kind).delete(
                name=name, namespace=namespace, body={"propagationPolicy": propagation}
            )

    def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, body: dict[str, Any]
    ) -> None:
        """A JSON merge patch under the operator's field manager."""
        API_REQUESTS.labels("patch").inc()
        self.resource(api_version, kind).patch(
            name=name,
            namespace=namespace,
            body=body,
            content_type="application/merge-patch+json",
            field_manager=FIELD_MANAGER,
        )

    def patch_status(
        self, api_version: str, kind: str, name: str, namespace: str, status: dict[str, Any]
    ) -> None:
        API_REQUESTS.labels("patch_status").inc()
        patched = self.resource(api_version, kind).status.patch(
            name=name,
            namespace=namespace,
            body={"status": status},
            content_type="application/merge-patch+json",
            field_manager=FIELD_MANAGER,
        )
        if self.objects is not None:
            self.objects.upsert((api_version, kind), patched.to_dict())

    def event(self, owner: dict[str, Any], reason: str, message: str, warning: bool = False) -> None:
        """A core/v1 Event on `owner`, as `kubectl describe` shows them."""
        meta = owner["metadata"]
        now = rfc3339(utcnow())
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": FIELD_MANAGER},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        API_REQUESTS.labels("create_event").inc()
        try:
            self.resource("v1", "Event").create(body=body, namespace=meta["namespace"])
        except Exception:  # events are best effort: never fail a reconcile over one
            log.warning(
                "could not post event %s on %s/%s", reason, meta["namespace"], meta["name"], exc_info=True
            )


def _equality_selector(selector: str | None) -> dict[str, str] | None:
    """`a=b,c=d` as a dict ({} for no selector); None for anything else (`!=`, `in`, existence)."""
    if not selector:
        return {}
    out = {}
    for part in selector.split(","):
        key, sep, value = part.partition("=")
        if not sep or value.startswith("=") or key.endswith("!") or not key.strip():
            return None
        out[key.strip()] = value.strip()
    return out
