"""kopf wiring only: watch events become work-queue entries; the controller does the rest.

No handler here stores state on the objects: kopf's progress and diff-base annotations are never
written (event handlers and startup hooks have none), no finalizer is added (deletion cascades
through ownerReferences), so GitOps tools see only what users wrote and the status we report.
Should a future handler need kopf storage, it is configured under our own `brainai.io` prefix.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from brainai_operator import api
from brainai_operator.client import Kube
from brainai_operator.controller import Controller
from brainai_operator.prometheus import AdvisorSettings
from brainai_operator.resources.cluster import WATCHED_CHILDREN
from brainai_operator.resources.common import INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from brainai_operator.strategies import OperatorDefaults

log = logging.getLogger(__name__)
OPTIONS: dict[str, Any] = {
    "workers": 2,
    "resync_seconds": 60.0,
    "namespaces": None,
    "advisor": AdvisorSettings(),
    "defaults": OperatorDefaults(),
}


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{api.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=api.GROUP)
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = max(4, OPTIONS["workers"] * 2)
    kube = await asyncio.to_thread(Kube)
    memo.controller = Controller(
        kube,
        namespaces=OPTIONS["namespaces"],
        workers=OPTIONS["workers"],
        resync_seconds=OPTIONS["resync_seconds"],
        advisor=OPTIONS["advisor"],
        defaults=OPTIONS["defaults"],
    )
    memo.controller_task = asyncio.create_task(memo.controller.run())
    log.info(
        "controller started: %d workers, resync every %.0fs", OPTIONS["workers"], OPTIONS["resync_seconds"]
    )


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    task = getattr(memo, "controller_task", None)
    if task:
        task.cancel()


@kopf.on.event(api.GROUP, api.VERSION, api.PLURAL)
async def cluster_changed(
    name: str, namespace: str | None, meta: kopf.Meta, memo: kopf.Memo, **_: Any
) -> None:
    if namespace:  # always set: kopf types it optional for cluster-scoped kinds, and these are namespaced
        memo.controller.enqueue(namespace, name, meta.get("generation"))


async def _child_changed(labels: Mapping[str, str], namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    if namespace:
        memo.controller.enqueue(namespace, labels[INSTANCE_LABEL])


for group, version, plural in WATCHED_CHILDREN:
    kopf.on.event(
        group,
        version,
        plural,
        labels={MANAGED_BY_LABEL: MANAGED_BY, INSTANCE_LABEL: kopf.PRESENT},
        id=f"child-{plural}",
    )(_child_changed)
