import base64
from typing import Any

import yaml

from brainai_operator.api import BrainAIClusterSpec
from brainai_operator.resources.cluster import build_desired
from brainai_operator.strategies import resolve

PASSWORDS = {"postgres": {"superuser-password": "s3cret-super", "replication-password": "s3cret-repl"}}


def objs(**postgres: Any) -> dict[tuple[str, str], dict[str, Any]]:
    spec = BrainAIClusterSpec.model_validate({"postgres": {"enabled": True, **postgres}})
    return {(o["kind"], o["metadata"]["name"]): o for o in build_desired("c", "ns", resolve(spec), PASSWORDS)}


def test_one_patroni_statefulset_services_rbac_and_secret() -> None:
    found = objs(readReplicas=2)
    members = found[("StatefulSet", "c-postgres")]
    assert members["spec"]["replicas"] == 3  # the leader and two replicas, all alike
    assert members["spec"]["updateStrategy"] == {"type": "OnDelete"}  # rolled by the operator
    pod = members["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "c-postgres"
    assert pod["containers"][0]["command"] == ["patroni", "/etc/patroni/patroni.yml"]
    labels = members["spec"]["template"]["metadata"]["labels"]
    assert labels["brainai.io/postgres-cluster"] == "c-postgres-rw"
    # -rw has no selector: Patroni writes its Endpoints (the leader lock) with the leader's address.
    assert "selector" not in found[("Service", "c-postgres-rw")]["spec"]
    assert found[("Service", "c-postgres-ro")]["spec"]["selector"]["brainai.io/postgres-role"] == "replica"
    for key in ("config", "failover", "sync"):  # anchors for Patroni's other DCS keys
        anchor = found[("Service", f"c-postgres-rw-{key}")]["spec"]
        assert "selector" not in anchor and anchor["clusterIP"] == "None"
    rules = found[("Role", "c-postgres")]["rules"]
    assert {r["resources"][0] for r in rules} == {"endpoints", "pods"}
    assert all("delete" not in r["verbs"] for r in rules)
    binding = found[("RoleBinding", "c-postgres")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "c-postgres", "namespace": "ns"}]
    secret = found[("Secret", "c-postgres-credentials")]["data"]
    url = base64.b64decode(secret["database-url"]).decode()
    assert url == "postgresql://postgres:s3cret-super@c-postgres-rw.ns.svc:5432/brain_ai"


def patroni(**postgres: Any) -> dict[str, Any]:
    return yaml.safe_load(objs(**postgres)[("ConfigMap", "c-postgres-patroni")]["data"]["patroni.yml"])


def test_seed_parameters_are_defaults_and_overridable() -> None:
    config = patroni(parameters={"work_mem": "64MB", "max_connections": "300"})
    local = config["postgresql"]["parameters"]
    assert local["shared_buffers"] == "4GB" and local["effective_cache_size"] == "12GB"
    assert local["work_mem"] == "64MB"
    # Cluster-wide settings go to the DCS, where Patroni takes them from (the same on every member).
    dcs = config["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert dcs["max_connections"] == "300" and "max_connections" not in local
    assert dcs["wal_level"] == "replica" and dcs["max_replication_slots"] == "20"
    assert config["bootstrap"]["dcs"]["postgresql"]["use_pg_rewind"] is True


def test_synchronous_replication_is_off_unless_asked_for() -> None:
    assert patroni()["bootstrap"]["dcs"]["synchronous_mode"] is False
    assert patroni(synchronous=True)["bootstrap"]["dcs"]["synchronous_mode"] is True


def test_a_changed_local_setting_rolls_the_members_a_dcs_one_does_not() -> None:
    def stamp(**postgres: Any) -> str:
        template = objs(**postgres)[("StatefulSet", "c-postgres")]["spec"]["template"]
        return template["metadata"]["annotations"]["brainai.io/patroni-config"]

    assert stamp() == stamp(synchronous=True)  # the operator writes the DCS key; Patroni applies it
    assert stamp() != stamp(parameters={"work_mem": "64MB"})


def test_slot_retention_follows_the_volume_unless_set() -> None:
    assert patroni(storage={"size": "20Gi"})["postgresql"]["parameters"]["max_slot_wal_keep_size"] == "5120MB"
    mine = patroni(storage={"size": "20Gi"}, parameters={"max_slot_wal_keep_size": "2GB"})
    assert mine["postgresql"]["parameters"]["max_slot_wal_keep_size"] == "2GB"


def test_no_password_outside_the_secret() -> None:
    for (kind, _), obj in objs(readReplicas=1).items():
        if kind != "Secret":
            text = repr(obj)
            assert "s3cret" not in text, kind


def test_read_replicas_default_from_strategy_and_zero_means_none() -> None:
    spec = BrainAIClusterSpec.model_validate({"strategy": "query-focused", "postgres": {"enabled": True}})
    members = {
        o["metadata"]["name"]: o
        for o in build_desired("c", "ns", resolve(spec), PASSWORDS)
        if o["kind"] == "StatefulSet"
    }
    assert members["c-postgres"]["spec"]["replicas"] > 1
    assert objs(readReplicas=0)[("StatefulSet", "c-postgres")]["spec"]["replicas"] == 1
    assert ("Service", "c-postgres-ro") not in objs(readReplicas=0)


def test_external_database_builds_nothing_and_wires_the_engine() -> None:
    found = objs(external={"secretRef": {"name": "db", "key": "url"}})
    assert not [k for k in found if k[0] == "StatefulSet"]
    env = found[("Deployment", "c-engine")]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}} in env


def test_major_version_from_the_image_tag() -> None:
    from brainai_operator.resources.postgres import major_version

    assert major_version("postgres:15") == "15"
    assert major_version("registry:5000/team/postgres:16.4-bookworm") == "16"  # not the registry port
    assert major_version("postgres") is None and major_version("postgres:latest") is None


def test_retained_credentials_are_marked_to_outlive_the_cluster() -> None:
    from brainai_operator.resources.common import KEEP_WITH_DATA_ANNOTATION

    kept = objs()[("Secret", "c-postgres-credentials")]["metadata"]["annotations"]
    assert kept == {KEEP_WITH_DATA_ANNOTATION: "true"}
    deleted = objs(storage={"retention": "Delete"})[("Secret", "c-postgres-credentials")]["metadata"]
    assert KEEP_WITH_DATA_ANNOTATION not in (deleted.get("annotations") or {})


def test_members_spread_over_nodes_and_drain_one_at_a_time() -> None:
    found = objs(readReplicas=2)
    spread = found[("StatefulSet", "c-postgres")]["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    budget = found[("PodDisruptionBudget", "c-postgres")]["spec"]
    # One member at a time, the leader too: Patroni hands the lock over when it is drained.
    assert (
        budget["maxUnavailable"] == 1 and "brainai.io/postgres-role" not in budget["selector"]["matchLabels"]
    )
