"""Replacing children whose immutable fields changed: what is called, in which order."""

from __future__ import annotations

from typing import Any, cast

import pytest

from brainai_operator import immutable
from brainai_operator.client import Kube


class Recorder:
    """Just enough of Kube: known objects, and every write in order."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.objects = objects
        self.calls: list[tuple[str, ...]] = []

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None, propagation: str = "Background"
    ) -> None:
        self.calls.append(("delete", kind, name, propagation))

    def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, body: dict[str, Any]
    ) -> None:
        self.calls.append(("patch", kind, name, body["spec"]["resources"]["requests"]["storage"]))


def sts(size: str, replicas: int = 2) -> dict[str, Any]:
    claim = {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": size}}}}
    return {
        "kind": "StatefulSet",
        "metadata": {"name": "c-postgres-replica", "namespace": "ns"},
        "spec": {"replicas": replicas, "volumeClaimTemplates": [claim]},
    }


def test_a_larger_size_grows_every_claim_then_recreates_the_statefulset_keeping_its_pods() -> None:
    claims = {("PersistentVolumeClaim", f"data-c-postgres-replica-{i}"): {"spec": {}} for i in range(2)}
    kube = Recorder({("StatefulSet", "c-postgres-replica"): sts("10Gi"), **claims})
    done = immutable.replace(cast(Kube, kube), sts("20Gi"))
    assert done is not None and "10Gi to 20Gi" in done
    assert kube.calls == [
        ("patch", "PersistentVolumeClaim", "data-c-postgres-replica-0", "20Gi"),
        ("patch", "PersistentVolumeClaim", "data-c-postgres-replica-1", "20Gi"),
        ("delete", "StatefulSet", "c-postgres-replica", "Orphan"),
    ]


def test_other_statefulset_changes_are_not_ours_to_replace() -> None:
    kube = Recorder({("StatefulSet", "c-postgres-replica"): sts("10Gi")})
    assert immutable.replace(cast(Kube, kube), sts("10Gi")) is None
    assert immutable.replace(cast(Kube, kube), sts("5Gi")) is None  # shrinking is refused at admission
    assert kube.calls == []


def test_a_job_with_a_new_template_is_deleted_for_the_next_pass() -> None:
    kube = Recorder({})
    job = {"kind": "Job", "metadata": {"name": "c-redis-cluster-n6", "namespace": "ns"}}
    assert immutable.replace(cast(Kube, kube), job)
    assert kube.calls == [("delete", "Job", "c-redis-cluster-n6", "Background")]


def test_a_claim_the_api_server_will_not_grow_is_reported() -> None:
    from kubernetes.dynamic.exceptions import DynamicApiError

    class Refusing(Recorder):
        def patch(self, *args: Any) -> None:
            exc = DynamicApiError(
                cast(Any, type("E", (), {"status": 403, "reason": "Forbidden", "body": b"", "headers": {}})())
            )
            raise exc

    claims = {("PersistentVolumeClaim", "data-c-postgres-replica-0"): {"spec": {}}}
    kube = Refusing({("StatefulSet", "c-postgres-replica"): sts("10Gi", replicas=1), **claims})
    with pytest.raises(immutable.CannotReplace, match="data-c-postgres-replica-0 cannot grow to 20Gi"):
        immutable.replace(cast(Kube, kube), sts("20Gi", replicas=1))
    assert kube.calls == []  # the StatefulSet is left alone
