"""The Helm chart, installed as a user would, and the RBAC it grants proven sufficient.

The operator pod the chart creates cannot run on kwok nodes (nothing executes there), so the
RBAC proof runs the real operator process locally with a token of the chart's ServiceAccount:
every API call it makes is authorized against exactly the chart's Roles.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.conftest import run_operator
from e2e.kube import Cluster, KubectlError
from e2e.test_operator import cluster_manifest, wait_ready

CHART = Path(__file__).resolve().parent.parent / "charts" / "brain-ai-operator"
CRDS = Path(__file__).resolve().parent.parent / "crds"
KUBE_VERSION = "1.34.4"


@pytest.fixture
def release_namespace(cluster: Cluster) -> Iterator[str]:
    name = f"brain-ai-system-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


def template(cluster: Cluster, *args: str) -> list[dict[str, Any]]:
    out = cluster.helm("template", "brain", str(CHART), "--kube-version", KUBE_VERSION, *args)
    return [d for d in yaml.safe_load_all(out) if d]


def test_chart_crd_is_the_generated_one() -> None:
    assert (CHART / "crds" / "brainai.io_brainaiclusters.yaml").read_text() == (
        CRDS / "brainai.io_brainaiclusters.yaml"
    ).read_text()


def test_lint_and_values_schema(cluster: Cluster) -> None:
    cluster.helm("lint", str(CHART), "--strict")
    cluster.helm("lint", str(CHART), "--strict", "--set", "watchNamespaces={team-a,team-b}")
    bad = {
        "replicaCount=0": "replicaCount",
        "image.pullPolicy=Sometimes": "pullPolicy",
        "logLevel=verbose": "logLevel",
        "watchNamespaces={Not_A_Namespace}": "watchNamespaces",
        "metrics.port=80": "port",
        "resources.requests.cpu=lots": "cpu",
        "replicaCoutn=2": "replicaCoutn",
        "advisor.prometheusUrl=prometheus:9090": "prometheusUrl",
    }
    for value, field in bad.items():
        with pytest.raises(KubectlError) as rejected:
            template(cluster, "--set", value)
        assert field in rejected.value.stderr, value


def test_rendered_manifests_are_accepted_by_the_api_server(cluster: Cluster, release_namespace: str) -> None:
    for extra in ([], ["--set", f"watchNamespaces={{{release_namespace}}}"]):
        docs = template(cluster, "-n", release_namespace, *extra)
        kinds = {d["kind"] for d in docs}
        assert {"ServiceAccount", "Deployment", "Service"} <= kinds
        assert ("ClusterRole" in kinds) == (not extra) and ("Role" in kinds)
        out = cluster.kubectl(
            "apply", "--dry-run=server", "-n", release_namespace, "-f", "-", input=yaml.safe_dump_all(docs)
        )
        assert "created (server dry run)" in out
    deploy = next(d for d in template(cluster) if d["kind"] == "Deployment")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert deploy["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_install_upgrade_uninstall(cluster: Cluster, crd: str, release_namespace: str) -> None:
    ns = release_namespace
    cluster.helm("install", "brain", str(CHART), "-n", ns, "--wait", "--timeout", "120s")
    deploy = cluster.get("deployment", "brain-brain-ai-operator", ns)
    assert deploy["status"]["availableReplicas"] == 1
    assert "--log-level=info" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert cluster.get("clusterrole", "brain-brain-ai-operator") is not None

    cluster.helm(
        "upgrade",
        "brain",
        str(CHART),
        "-n",
        ns,
        "--set",
        "logLevel=debug",
        "--set",
        "replicaCount=2",
        "--wait",
        "--timeout",
        "120s",
    )
    deploy = cluster.get("deployment", "brain-brain-ai-operator", ns)
    assert "--log-level=debug" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert deploy["spec"]["replicas"] == 2
    history = json.loads(cluster.helm("history", "brain", "-n", ns, "-o", "json"))
    assert [h["revision"] for h in history] == [1, 2] and history[-1]["status"] == "deployed"

    cluster.helm("uninstall", "brain", "-n", ns, "--wait", "--timeout", "120s")
    assert cluster.get("deployment", "brain-brain-ai-operator", ns) is None
    assert cluster.get("clusterrole", "brain-brain-ai-operator") is None
    assert cluster.get("crd", crd) is not None  # Helm leaves CRDs (and so users' clusters) in place


def service_account_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount, nothing more."""
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]
    token = cluster.kubectl("create", "token", account, "-n", namespace, "--duration=1h").strip()
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sa",
                "clusters": [{"name": "c", "cluster": server}],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}],
            }
        )
    )
    return path


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_operator_reconciles_with_only_the_chart_rbac(
    cluster: Cluster, crd: str, release_namespace: str, namespace: str, tmp_path: Path, mode: str
) -> None:
    ns = release_namespace
    values = ["--set", f"watchNamespaces={{{namespace}}}"] if mode == "namespaced" else []
    cluster.helm("install", "brain", str(CHART), "-n", ns, "--set", "replicaCount=1", *values)
    try:
        account = "brain-brain-ai-operator"
        who = f"system:serviceaccount:{ns}:{account}"
        assert (
            cluster.kubectl(
                "auth",
                "can-i",
                "patch",
                "brainaiclusters.brainai.io",
                "--subresource=status",
                "-n",
                namespace,
                "--as",
                who,
            ).strip()
            == "yes"
        )
        assert (
            cluster.run(
                "kubectl", "auth", "can-i", "delete", "nodes", "--as", who, check=False
            ).stdout.strip()
            == "no"
        )
        assert (
            cluster.run(
                "kubectl",
                "auth",
                "can-i",
                "patch",
                "brainaiclusters.brainai.io",
                "-n",
                namespace,
                "--as",
                who,
                check=False,
            ).stdout.strip()
            == "no"
        )  # never writes spec
        if mode == "namespaced":
            assert (
                cluster.run(
                    "kubectl",
                    "auth",
                    "can-i",
                    "list",
                    "secrets",
                    "-n",
                    "kube-system",
                    "--as",
                    who,
                    check=False,
                ).stdout.strip()
                == "no"
            )

        kubeconfig = service_account_kubeconfig(cluster, ns, account, tmp_path / "sa.kubeconfig")
        env = {**cluster.env, "KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": ns}
        args = ["--leader-elect", "--lease-name", account]
        if mode == "namespaced":
            args += ["--namespace", namespace]
        with run_operator(env, *args) as proc:
            cluster.apply(
                cluster_manifest(
                    "rbac",
                    {
                        "autoscaling": {"enabled": True, "minReplicas": 2},
                        "postgres": {"enabled": True, "readReplicas": 1},
                        "redis": {"enabled": True},
                    },
                ),
                namespace,
            )
            wait_ready(cluster, namespace, "rbac", timeout=120)
            assert proc.poll() is None
            lease = cluster.get("lease", account, ns)
            assert lease["spec"]["holderIdentity"]
        events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
        assert any(e["reason"] == "PhaseReady" for e in events)
    finally:
        cluster.helm("uninstall", "brain", "-n", ns, "--wait", "--timeout", "60s")


def test_reapplying_with_another_field_manager_changes_nothing(
    cluster: Cluster, crd: str, namespace: str
) -> None:
    """GitOps tools re-apply the same manifest over and over, under their own manager names."""
    manifest = yaml.safe_dump(
        yaml.safe_load((CHART.parent.parent / "examples" / "balanced.yaml").read_text())
    )
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=kubectl-user", "-n", namespace, "-f", "-", input=manifest
    )
    before = cluster.get("bac", "brain-balanced", namespace)
    for manager in ("argocd-controller", "kustomize-controller"):
        cluster.kubectl(
            "apply", "--server-side", f"--field-manager={manager}", "-n", namespace, "-f", "-", input=manifest
        )
        settled = cluster.get("bac", "brain-balanced", namespace)["metadata"]["resourceVersion"]
        # The same manager again: a true no-op, the object is not written at all.
        cluster.kubectl(
            "apply", "--server-side", f"--field-manager={manager}", "-n", namespace, "-f", "-", input=manifest
        )
        assert cluster.get("bac", "brain-balanced", namespace)["metadata"]["resourceVersion"] == settled
        diff = cluster.run(
            "kubectl",
            "diff",
            "--server-side",
            f"--field-manager={manager}",
            "-n",
            namespace,
            "-f",
            "-",
            input=manifest,
            check=False,
        )
        assert diff.returncode == 0, diff.stdout
    after = cluster.get("bac", "brain-balanced", namespace)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"]
