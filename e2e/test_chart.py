"""The Helm chart, installed as a user would, and the RBAC it grants proven sufficient.

On kind the chart's operator pod runs from its image with its ServiceAccount's token, so it is the
RBAC proof. On kwok nothing executes in pods, so the proof runs the real operator process locally
with a token of the chart's ServiceAccount: every API call it makes is authorized against exactly
the chart's Roles.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from brainai_operator import api
from brainai_operator.resources import postgres, redis
from brainai_operator.resources.cluster import build_desired
from brainai_operator.resources.common import KEEP_WITH_DATA_ANNOTATION
from brainai_operator.strategies import OperatorDefaults, resolve
from e2e.conftest import run_operator
from e2e.kube import TIER, Cluster, KubectlError, wait_until
from e2e.pods import Toolbox
from e2e.test_operator import cluster_manifest, example, wait_ready

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
    cluster_role = f"brain-brain-ai-operator-{ns}"  # cluster-scoped names carry the release's namespace
    assert cluster.get("clusterrole", cluster_role) is not None
    assert cluster.get("clusterrolebinding", cluster_role)["roleRef"]["name"] == cluster_role

    # A release of the same name in another namespace owns none of the first one's objects: Helm's
    # ownership check (run by a server dry run too) lets it install.
    other = f"{ns}-b"
    cluster.kubectl("create", "namespace", other)
    try:
        out = cluster.helm("install", "brain", str(CHART), "-n", other, "--dry-run=server")
        assert f"name: brain-brain-ai-operator-{other}" in out
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", "--ignore-not-found")

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
    assert cluster.get("clusterrole", cluster_role) is None
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


@contextlib.contextmanager
def chart_operator(
    cluster: Cluster, ns: str, account: str, watch: str | None, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes] | None]:
    """The operator acting as the chart's ServiceAccount: its pod on kind, a local process on kwok."""
    if TIER == "kind":
        cluster.kubectl("rollout", "status", f"deployment/{account}", "-n", ns, "--timeout=180s")
        yield None
        return
    kubeconfig = service_account_kubeconfig(cluster, ns, account, tmp_path / "sa.kubeconfig")
    env = {**cluster.env, "KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": ns}
    args = ["--leader-elect", "--lease-name", account]
    if watch:
        args += ["--namespace", watch]
    with run_operator(env, *args) as proc:
        yield proc


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

        watch = namespace if mode == "namespaced" else None
        with chart_operator(cluster, ns, account, watch, tmp_path) as proc:
            cluster.apply(
                cluster_manifest(
                    "rbac",
                    {
                        "autoscaling": {"enabled": True, "minReplicas": 2},
                        "postgres": {"enabled": True, "readReplicas": 1},
                        "redis": {"enabled": True, "replicasPerMaster": 0},  # 3 nodes: quicker to form
                    },
                ),
                namespace,
            )
            wait_ready(cluster, namespace, "rbac", timeout=300)
            assert proc is None or proc.poll() is None
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


@pytest.mark.kind
def test_chart_operator_runs_an_example(cluster: Cluster, crd: str, release_namespace: str, namespace: str):
    """The operator from its image, installed by the chart, turns an example into engines that answer.

    (The suite's own operator process runs every example on real pods in test_operator.py.)"""
    name = "balanced"
    watch = f"watchNamespaces={{{namespace}}}"
    cluster.helm("install", "brain", str(CHART), "-n", release_namespace, "--set", watch, "--wait")
    try:
        manifest = example(name)
        cluster.apply(manifest, namespace)
        cr = manifest["metadata"]["name"]
        wait_ready(cluster, namespace, cr, timeout=300)
        toolbox = Toolbox(cluster, namespace).start()
        service = f"http://{cr}-engine.{namespace}.svc:8080"
        learned = toolbox.http("POST", f"{service}/api/v1/learn", {"text": f"the {name} example answers"})
        assert learned["status"] in (200, 201), learned
        found = toolbox.http("GET", f"{service}/health")
        assert found["status"] == 200, found
        logs = cluster.kubectl("logs", "-n", release_namespace, "deployment/brain-brain-ai-operator")
        assert f"{namespace}/{cr}" in logs  # reconciled by the chart's pod, not by anything else
    finally:
        cluster.helm("uninstall", "brain", "-n", release_namespace, "--wait", "--timeout", "120s")


@pytest.mark.kind
def test_operator_pod_killed_mid_reconcile_converges_without_orphans(
    cluster: Cluster, crd: str, release_namespace: str, namespace: str
) -> None:
    watch = f"watchNamespaces={{{namespace}}}"
    cluster.helm("install", "brain", str(CHART), "-n", release_namespace, "--set", watch, "--wait")
    operator_pods = "app.kubernetes.io/instance=brain"
    spec = {
        "autoscaling": {"enabled": False},
        "engine": {"replicas": 2},
        "postgres": {"enabled": True, "readReplicas": 1},
        "redis": {"enabled": True, "replicasPerMaster": 0},  # 3 nodes: quicker to form
    }
    try:
        manifest = cluster_manifest("phoenix", spec)
        cluster.apply(manifest, namespace)
        # Kill it while it works: once as the first children appear, once while pods start.
        for kind in ("secret", "statefulset"):
            wait_until(lambda k=kind: cluster.items(k, namespace), timeout=120, what=f"a {kind}")
            cluster.kubectl(
                "delete", "pod", "-n", release_namespace, "-l", operator_pods, "--grace-period=0", "--force"
            )
        wait_ready(cluster, namespace, "phoenix", timeout=420)

        bac = cluster.get("bac", "phoenix", namespace)
        parsed = api.BrainAIClusterSpec.model_validate(manifest["spec"])
        passwords = {tier.COMPONENT: dict.fromkeys(tier.SECRET_KEYS, "") for tier in (postgres, redis)}
        desired = build_desired("phoenix", namespace, resolve(parsed, OperatorDefaults()), passwords)
        want = {(d["kind"], d["metadata"]["name"]) for d in desired}
        kinds = (
            "deployment,statefulset,service,configmap,secret,job,pdb,networkpolicy,serviceaccount,"
            "role,rolebinding,hpa"
        )
        found = cluster.items(kinds, namespace, "app.kubernetes.io/instance=phoenix")
        assert {(o["kind"], o["metadata"]["name"]) for o in found} == want
        for o in found:  # owned by the cluster, except what must outlive it with the retained volumes
            if (o["metadata"].get("annotations") or {}).get(KEEP_WITH_DATA_ANNOTATION) == "true":
                assert not o["metadata"].get("ownerReferences")
            else:
                assert o["metadata"]["ownerReferences"][0]["uid"] == bac["metadata"]["uid"]
    finally:
        cluster.helm("uninstall", "brain", "-n", release_namespace, "--wait", "--timeout", "120s")
