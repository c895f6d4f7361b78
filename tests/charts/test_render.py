"""The Helm chart rendered by the real `helm template`, no cluster needed: two releases side by side
(the same release name in two namespaces, and names as long as Helm and Kubernetes allow) keep
their cluster-scoped objects apart, every name is a valid DNS-1123 label, and each binding refers to
a role that is rendered with it.

helm is the harness's (e2e/cluster/build.sh builds it into $BRAINAI_CACHE/bin; `make test` runs
that first), else one on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "brain-ai-operator"
VERSIONS = dict(
    re.findall(r"^([A-Z0-9_]+)=(\S+)$", (ROOT / "e2e" / "cluster" / "versions.env").read_text(), re.M)
)
KUBE_VERSION = VERSIONS["K8S_VERSION"].removeprefix("v")
HARNESS_HELM = Path(os.environ.get("BRAINAI_CACHE", Path.home() / ".cache" / "brain-ai")) / "bin" / "helm"
# The kinds this chart renders without a namespace (the CRD is shared by design: see below).
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LONG_RELEASE = "r" * 44 + "-brain-ai"  # 53 characters, Helm's limit for a release name
LONG_NAMESPACE = "n" * 61 + "-{}"  # 63 characters once formatted with one letter


def helm_binary() -> Path:
    if HARNESS_HELM.is_file() and os.access(HARNESS_HELM, os.X_OK):
        return HARNESS_HELM
    found = shutil.which("helm")
    if not found:
        pytest.skip(f"no helm binary: neither {HARNESS_HELM} (e2e/cluster/build.sh) nor one on PATH")
    return Path(found)


def helm(*args: str) -> str:
    proc = subprocess.run([str(helm_binary()), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"helm {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout


def render(release: str, namespace: str, *values: str, kube_version: bool = True) -> list[dict[str, Any]]:
    args = ["template", release, str(CHART), "-n", namespace, "--include-crds"]
    if kube_version:
        args += ["--kube-version", KUBE_VERSION]
    for value in values:
        args += ["--set", value]
    return [d for d in yaml.safe_load_all(helm(*args)) if d]


def key(doc: dict[str, Any]) -> tuple[str, str | None, str]:
    return doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"]


def check_release(docs: list[dict[str, Any]]) -> None:
    """Valid names, namespaced objects placed explicitly, bindings to roles of the same render."""
    for doc in docs:
        name = doc["metadata"]["name"]
        if doc["kind"] == "CustomResourceDefinition":
            continue  # <plural>.<group>: a DNS-1123 subdomain, fixed by the API
        assert len(name) <= 63 and DNS1123_LABEL.match(name), f"{doc['kind']} {name!r} ({len(name)} chars)"
        if doc["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in doc["metadata"], key(doc)
        else:
            assert doc["metadata"].get("namespace"), f"{key(doc)} has no namespace"
    rendered = {key(d) for d in docs}
    accounts = {
        (d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs if d["kind"] == "ServiceAccount"
    }
    bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert bindings
    for binding in bindings:
        ref = binding["roleRef"]
        assert ref["apiGroup"] == "rbac.authorization.k8s.io"
        # A RoleBinding's Role is in the binding's namespace; a ClusterRole has none.
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        assert (ref["kind"], namespace, ref["name"]) in rendered, f"{key(binding)} refers to a missing {ref}"
        for subject in binding["subjects"]:
            assert (subject["namespace"], subject["name"]) in accounts, f"{key(binding)}: {subject}"


def check_side_by_side(*releases: list[dict[str, Any]]) -> None:
    for docs in releases:
        check_release(docs)
    crds = [[d for d in docs if d["kind"] == "CustomResourceDefinition"] for docs in releases]
    assert crds[0] and all(c == crds[0] for c in crds), "the CRD is shared: every release renders the same"
    owned = [key(d) for docs in releases for d in docs if d["kind"] != "CustomResourceDefinition"]
    # (kind, namespace, name): a cluster-scoped object's namespace is None, so its name alone.
    clashes = [k for k, n in Counter(owned).items() if n > 1]
    assert not clashes, f"objects two releases would both own: {clashes}"


def test_same_release_name_in_two_namespaces_cluster_wide() -> None:
    a, b = render("brain", "brain-ai-system"), render("brain", "brain-ai-other")
    check_side_by_side(a, b)
    names = {key(d)[0::2] for d in a}
    # Cluster-scoped names carry the namespace; namespaced ones keep the release's full name.
    assert ("ClusterRole", "brain-brain-ai-operator-brain-ai-system") in names
    assert ("ClusterRoleBinding", "brain-brain-ai-operator-brain-ai-system") in names
    for kind, name in [
        ("Deployment", "brain-brain-ai-operator"),
        ("ServiceAccount", "brain-brain-ai-operator"),
        ("Service", "brain-brain-ai-operator-metrics"),
        ("Role", "brain-brain-ai-operator-leader-election"),
        ("RoleBinding", "brain-brain-ai-operator-leader-election"),
    ]:
        assert (kind, name) in names


def test_same_release_name_in_two_namespaces_watching_disjoint_namespaces() -> None:
    a = render("brain", "ops-a", "watchNamespaces={team-a,team-c}")
    b = render("brain", "ops-b", "watchNamespaces={team-b}")
    check_side_by_side(a, b)
    assert not {d["kind"] for d in a + b} & {"ClusterRole", "ClusterRoleBinding"}


def test_longest_names_stay_valid_and_apart() -> None:
    # Two namespaces that differ only in their last character, past where names are cut.
    ns_a, ns_b = LONG_NAMESPACE.format("a"), LONG_NAMESPACE.format("b")
    assert len(LONG_RELEASE) == 53 and len(ns_a) == 63
    cluster_wide = [render(LONG_RELEASE, ns) for ns in (ns_a, ns_b)]
    check_side_by_side(*cluster_wide)
    watched = ["w" + ns[1:] for ns in (ns_a, ns_b)]
    check_side_by_side(
        *(
            render(LONG_RELEASE, ns, f"watchNamespaces={{{w}}}")
            for ns, w in zip((ns_a, ns_b), watched, strict=True)
        )
    )
    # Deterministic: the same release renders the same names again.
    assert [key(d) for d in render(LONG_RELEASE, ns_a)] == [key(d) for d in cluster_wide[0]]


def test_release_name_that_contains_the_chart_name() -> None:
    check_side_by_side(render("brain-ai-operator", "x"), render("brain-ai-operator", "y"))


def test_deployment_uses_the_rendered_account_and_a_namespaced_lease() -> None:
    for docs in (render("brain", "brain-ai-system"), render(LONG_RELEASE, LONG_NAMESPACE.format("a"))):
        deploy = next(d for d in docs if d["kind"] == "Deployment")
        spec = deploy["spec"]["template"]["spec"]
        accounts = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
        assert spec["serviceAccountName"] in accounts
        lease = [a.split("=", 1)[1] for a in spec["containers"][0]["args"] if a.startswith("--lease-name=")]
        assert lease and len(lease[0]) <= 63 and DNS1123_LABEL.match(lease[0])


def test_lint() -> None:
    helm("lint", str(CHART), "--strict")
    helm("lint", str(CHART), "--strict", "--set", "watchNamespaces={team-a,team-b}")


def test_template_without_kube_version() -> None:
    """A released helm assumes the Kubernetes of the client-go it was built with; ours must too
    (build.sh stamps it), else it assumes v1.20 and the chart's kubeVersion refuses to render."""
    docs = render("brain", "brain-ai-system", kube_version=False)
    assert {"Deployment", "ClusterRole", "ClusterRoleBinding"} <= {d["kind"] for d in docs}
    if helm_binary() == HARNESS_HELM:
        assert helm("version", "--template", "{{ .Version }}").strip() == VERSIONS["HELM_VERSION"]


def test_default_kube_version_is_stamped(tmp_path: Path) -> None:
    chart = tmp_path / "capabilities"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: capabilities\nversion: 0.1.0\n")
    (chart / "templates" / "kube.yaml").write_text("kubeVersion: {{ .Capabilities.KubeVersion.Version }}\n")
    assumed = yaml.safe_load(helm("template", "c", str(chart)).split("---")[-1])["kubeVersion"]
    major, minor = (int(p) for p in re.match(r"^v(\d+)\.(\d+)\.", assumed).groups())
    assert (major, minor) > (1, 20), (
        f"{helm_binary()} assumes Kubernetes {assumed}: an unstamped build; rebuild it (e2e/cluster/build.sh)"
    )
