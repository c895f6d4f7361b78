"""kopf wiring only: the operator's lifecycle. At startup the informers (watch-fed caches of the
BrainAICluster and of every kind it owns, `informers`) start and their relevant changes become
work-queue entries; the controller does the rest.

No handler here stores state on the objects: kopf's progress and diff-base annotations are never
written, no finalizer is added (deletion cascades through ownerReferences), so GitOps tools see only
what users wrote and the status we report. Should a future handler need kopf storage, it is
configured under our own `brainai.io` prefix.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from brainai_operator import api
from brainai_operator.client import Kube, load_api_client
from brainai_operator.controller import Controller
from brainai_operator.informers import Informers, informer_client, watched_kinds
from brainai_operator.prometheus import AdvisorSettings
from brainai_operator.strategies import OperatorDefaults

log = logging.getLogger(__name__)
OPTIONS: dict[str, Any] = {
    "workers": 2,
    "resync_seconds": 300.0,
    "max_backoff": 60.0,
    "namespaces": None,
    "advisor": AdvisorSettings(),
    "defaults": OperatorDefaults(),
}
SYNC_TIMEOUT_S = 30.0


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{api.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=api.GROUP)
    settings.posting.level = logging.WARNING
    loop = asyncio.get_running_loop()
    # Passes run in threads (the Kubernetes client blocks): one per worker, and spare for the rest.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=OPTIONS["workers"] + 4))
    controller: Controller | None = None

    def changed(namespace: str, name: str, generation: int | None) -> None:
        if controller is not None:
            loop.call_soon_threadsafe(controller.enqueue, namespace, name, generation)

    api_client = await asyncio.to_thread(load_api_client, OPTIONS["workers"] + 4)
    kinds = watched_kinds()
    informers = Informers(informer_client(api_client, len(kinds)), kinds, changed, OPTIONS["namespaces"])
    kube = Kube(api_client, objects=informers.cache)
    controller = memo.controller = Controller(
        kube,
        namespaces=OPTIONS["namespaces"],
        workers=OPTIONS["workers"],
        resync_seconds=OPTIONS["resync_seconds"],
        max_backoff=OPTIONS["max_backoff"],
        advisor=OPTIONS["advisor"],
        defaults=OPTIONS["defaults"],
    )
    memo.informers = informers
    informers.start()
    if not await asyncio.to_thread(informers.wait_synced, SYNC_TIMEOUT_S):
        log.warning(
            "informers not all synced after %.0fs; unsynced kinds are read from the API", SYNC_TIMEOUT_S
        )
    memo.controller_task = asyncio.create_task(controller.run())
    log.info(
        "controller started: %d workers, %d informers, resync every %.0fs",
        OPTIONS["workers"],
        len(informers.threads),
        OPTIONS["resync_seconds"],
    )


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    task = getattr(memo, "controller_task", None)
    if task:
        task.cancel()
    informers = getattr(memo, "informers", None)
    if informers:
        informers.stop()
