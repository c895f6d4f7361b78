"""Each tier's cluster is a real Kubernetes control plane, not a stub.

Each test exercises a piece of API machinery the operator depends on: CRD schema validation,
the Deployment and StatefulSet controllers, volume binding, garbage collection through
ownerReferences, and the HPA reading resource metrics. The pods run the project's images, so on
kind they really run (kwok only marks them Running).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from e2e.kube import IMAGES, VERSIONS, Cluster, KubectlError, wait_until

K8S_VERSION = VERSIONS["K8S_VERSION"]


def deployment(
    name: str, replicas: int, cpu_request: str = "20m", annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations or {}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": IMAGES["engine"],
                            "resources": {"requests": {"cpu": cpu_request, "memory": "64Mi"}},
                            "readinessProbe": {
                                "httpGet": {"path": "/ready", "port": 8080},
                                "periodSeconds": 2,
                            },
                        }
                    ],
                },
            },
        },
    }


def test_server_version_and_api_resources(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == K8S_VERSION
    assert version["clientVersion"]["gitVersion"] == K8S_VERSION
    resources = cluster.kubectl("api-resources", "--api-group=autoscaling", "-o", "name")
    assert "horizontalpodautoscalers.autoscaling" in resources.split()
    assert "autoscaling/v2" in cluster.kubectl("api-versions").split()
    nodes = cluster.get("nodes")["items"]
    assert len(nodes) >= 1
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", node["metadata"]["name"]


def test_crd_schema_rejects_invalid_object(cluster: Cluster, namespace: str) -> None:
    group = f"h{secrets.token_hex(3)}.harness.brainai.io"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {"size": {"type": "integer", "minimum": 1, "maximum": 10}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    cluster.apply(crd)
    try:
        cluster.wait_established(crd["metadata"]["name"])

        def widget(size: Any) -> dict[str, Any]:
            return {
                "apiVersion": f"{group}/v1",
                "kind": "Widget",
                "metadata": {"name": f"w{size}"},
                "spec": {"size": size},
            }

        with pytest.raises(KubectlError) as too_big:
            cluster.apply(widget(42), namespace)
        assert "spec.size" in too_big.value.stderr
        with pytest.raises(KubectlError) as wrong_type:
            cluster.apply(widget("big"), namespace)
        assert "spec.size" in wrong_type.value.stderr
        cluster.apply(widget(3), namespace)
        assert cluster.get(f"widgets.{group}", "w3", namespace)["spec"]["size"] == 3
    finally:
        cluster.kubectl("delete", "crd", crd["metadata"]["name"], "--wait=false")


def test_deployment_becomes_available_through_replicaset_and_pods(cluster: Cluster, namespace: str) -> None:
    cluster.apply(deployment("web", replicas=3), namespace)
    cluster.wait_for(
        "deployment", "web", namespace, lambda d: d.get("status", {}).get("availableReplicas") == 3
    )

    (replicaset,) = cluster.items("replicaset", namespace, "app=web")
    assert replicaset["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    pods = cluster.items("pod", namespace, "app=web")
    assert len(pods) == 3
    node_names = {n["metadata"]["name"] for n in cluster.get("nodes")["items"]}
    for pod in pods:
        assert pod["spec"]["nodeName"] in node_names  # placed by the real scheduler
        assert pod["status"]["phase"] == "Running"
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert ready["Ready"] == "True"


def test_deleting_owner_garbage_collects_children(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}, "data": {"k": "v"}},
        namespace,
    )
    owner_uid = cluster.get("configmap", "owner", namespace)["metadata"]["uid"]
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "child",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid},
                ],
            },
            "data": {},
        },
        namespace,
    )
    cluster.apply(deployment("doomed", replicas=2), namespace)
    cluster.wait_for(
        "deployment", "doomed", namespace, lambda d: d.get("status", {}).get("availableReplicas") == 2
    )

    cluster.kubectl("delete", "configmap", "owner", "-n", namespace, "--wait=false")
    cluster.kubectl("delete", "deployment", "doomed", "-n", namespace, "--wait=false")

    cluster.wait_gone("configmap", "child", namespace)
    wait_until(
        lambda: (
            not cluster.items("replicaset", namespace, "app=doomed")
            and not cluster.items("pod", namespace, "app=doomed")
        ),
        timeout=60,
        what="ReplicaSet and Pods of the deleted Deployment to be collected",
    )


def test_statefulset_with_volume_claims_gets_ready_pods(cluster: Cluster, namespace: str) -> None:
    labels = {"app": "db"}
    cluster.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "db"},
                "spec": {"clusterIP": "None", "selector": labels, "ports": [{"port": 5432}]},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "db"},
                "spec": {
                    "serviceName": "db",
                    "replicas": 2,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {
                                    "name": "db",
                                    "image": IMAGES["redis"],
                                    "command": ["redis-server", "--dir", "/data", "--appendonly", "yes"],
                                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                                    "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}},
                                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                                }
                            ]
                        },
                    },
                    "volumeClaimTemplates": [
                        {
                            "metadata": {"name": "data"},
                            "spec": {
                                "accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": "1Gi"}},
                            },
                        }
                    ],
                },
            },
        ],
        namespace,
    )
    cluster.wait_for(
        "statefulset", "db", namespace, lambda s: s.get("status", {}).get("readyReplicas") == 2, timeout=120
    )

    # kwok marks pods ready without waiting for volumes: wait for the claims on their own.
    def bound_claims() -> list[dict[str, Any]] | None:
        claims = cluster.items("pvc", namespace)
        bound = len(claims) == 2 and all(c.get("status", {}).get("phase") == "Bound" for c in claims)
        return claims if bound else None

    claims = wait_until(bound_claims, timeout=60, what="both claims to be Bound")
    assert sorted(c["metadata"]["name"] for c in claims) == ["data-db-0", "data-db-1"]
    assert all(c["status"]["phase"] == "Bound" for c in claims)
    default_class = next(
        c["metadata"]["name"]
        for c in cluster.get("storageclass")["items"]
        if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    )
    assert all(c["spec"]["storageClassName"] == default_class for c in claims)


@pytest.mark.kwok  # usage comes from pod annotations; on kind, e2e/test_autoscaling.py loads real pods
def test_hpa_reads_metrics_and_scales_when_usage_crosses_target(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        deployment("busy", replicas=1, cpu_request="100m", annotations={"kwok.x-k8s.io/usage-cpu": "20m"}),
        namespace,
    )
    cluster.apply(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "busy"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "busy"},
                "minReplicas": 1,
                "maxReplicas": 4,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
                "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0}},
            },
        },
        namespace,
    )

    def cpu_utilization(hpa: dict[str, Any]) -> int | None:
        for metric in hpa.get("status", {}).get("currentMetrics") or []:
            if metric.get("type") == "Resource":
                return metric["resource"]["current"].get("averageUtilization")
        return None

    hpa = cluster.wait_for(
        "hpa",
        "busy",
        namespace,
        lambda h: cpu_utilization(h) is not None,
        timeout=180,
        what="the HPA to read CPU metrics",
    )
    assert 15 <= cpu_utilization(hpa) <= 25  # about 20m used of 100m requested
    assert hpa["status"]["desiredReplicas"] == 1

    cluster.kubectl(
        "annotate", "pods", "-l", "app=busy", "-n", namespace, "--overwrite", "kwok.x-k8s.io/usage-cpu=250m"
    )
    cluster.wait_for(
        "hpa",
        "busy",
        namespace,
        lambda h: h["status"].get("desiredReplicas", 1) > 1,
        timeout=180,
        what="the HPA to scale up past its CPU target",
    )
    cluster.wait_for("deployment", "busy", namespace, lambda d: d["spec"]["replicas"] > 1, timeout=60)


def test_helm_installs_and_uninstalls_a_release(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    )

    cluster.helm("install", "probe", str(chart), "-n", namespace, "--set", "greeting=hi", "--wait")
    assert cluster.get("configmap", "probe-cm", namespace)["data"]["greeting"] == "hi"
    releases = json.loads(cluster.helm("list", "-n", namespace, "-o", "json"))
    assert [(r["name"], r["status"]) for r in releases] == [("probe", "deployed")]
    cluster.helm("uninstall", "probe", "-n", namespace, "--wait")
    assert cluster.get("configmap", "probe-cm", namespace) is None
