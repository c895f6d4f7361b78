"""Children whose changed fields the API server will not update in place: replaced instead.

- A Job's pod template is immutable: the Redis cluster Job is deleted and the next pass creates it
  with the new template (its script joins nodes to an existing cluster, so a re-run is safe).
- A StatefulSet's volumeClaimTemplates are immutable: a larger `storage.size` grows each claim
  (the API server refuses unless its StorageClass allows expansion), then the StatefulSet is
  deleted with its pods left running (orphaned), and the next pass re-creates it with the new
  template, adopting them.
  Smaller sizes are refused at admission: a claim cannot shrink.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes.dynamic.exceptions import DynamicApiError
from kubernetes.utils.quantity import parse_quantity

from brainai_operator.client import Kube

log = logging.getLogger(__name__)


class CannotReplace(RuntimeError):
    """The change needs something this cluster cannot do (e.g. expand a volume); says what."""


def claim_size(sts: dict[str, Any]) -> str | None:
    for template in sts["spec"].get("volumeClaimTemplates") or []:
        return str(template["spec"]["resources"]["requests"]["storage"])
    return None


def replace(kube: Kube, obj: dict[str, Any]) -> str | None:
    """After the API server refused `obj` as an update of immutable fields: make room for it.
    Returns what was done (for an event), or None when this is not a change we can make."""
    meta = obj["metadata"]
    if obj["kind"] == "Job":
        kube.delete("batch/v1", "Job", meta["name"], meta["namespace"])
        return f"Job/{meta['name']} re-created: its pod template changed"
    if obj["kind"] != "StatefulSet":
        return None
    live = kube.get("apps/v1", "StatefulSet", meta["name"], meta["namespace"])
    if live is None:
        return None
    old, new = claim_size(live), claim_size(obj)
    if old is None or new is None or parse_quantity(new) <= parse_quantity(old):
        return None
    grow_claims(kube, live, new)
    kube.delete("apps/v1", "StatefulSet", meta["name"], meta["namespace"], propagation="Orphan")
    return f"StatefulSet/{meta['name']}: claims grown from {old} to {new}; pods kept while it is re-created"


def grow_claims(kube: Kube, sts: dict[str, Any], size: str) -> None:
    """Request `size` on each existing claim; the API server refuses where the StorageClass does not
    allow expansion, and that refusal is the message status shows."""
    meta = sts["metadata"]
    claims = [
        f"{t['metadata']['name']}-{meta['name']}-{i}"
        for t in sts["spec"].get("volumeClaimTemplates") or []
        for i in range(int(sts["spec"].get("replicas", 1)))
    ]
    for claim in claims:
        if kube.get("v1", "PersistentVolumeClaim", claim, meta["namespace"]) is None:
            continue  # not created yet: the new template makes it at the new size
        try:
            kube.patch(
                "v1",
                "PersistentVolumeClaim",
                claim,
                meta["namespace"],
                {"spec": {"resources": {"requests": {"storage": size}}}},
            )
        except DynamicApiError as exc:
            raise CannotReplace(
                f"PersistentVolumeClaim {claim} cannot grow to {size}: {exc.summary()} (keep storage.size, "
                "or use a StorageClass with allowVolumeExpansion: true)"
            ) from exc
        log.info("%s/%s: requested %s", meta["namespace"], claim, size)
