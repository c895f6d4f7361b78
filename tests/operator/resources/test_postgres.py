import base64
from typing import Any

from brainai_operator.api import BrainAIClusterSpec
from brainai_operator.resources.cluster import build_desired
from brainai_operator.strategies import resolve

PASSWORDS = {"postgres": {"superuser-password": "s3cret-super", "replication-password": "s3cret-repl"}}


def objs(**postgres: Any) -> dict[tuple[str, str], dict[str, Any]]:
    spec = BrainAIClusterSpec.model_validate({"postgres": {"enabled": True, **postgres}})
    return {(o["kind"], o["metadata"]["name"]): o for o in build_desired("c", "ns", resolve(spec), PASSWORDS)}


def test_primary_replicas_services_and_secret() -> None:
    found = objs(readReplicas=2)
    primary = found[("StatefulSet", "c-postgres-primary")]
    replica = found[("StatefulSet", "c-postgres-replica")]
    assert primary["spec"]["replicas"] == 1 and replica["spec"]["replicas"] == 2
    assert primary["spec"]["selector"] != replica["spec"]["selector"]
    assert {("Service", "c-postgres-rw"), ("Service", "c-postgres-ro"), ("Service", "c-postgres")} <= set(
        found
    )
    secret = found[("Secret", "c-postgres-credentials")]["data"]
    url = base64.b64decode(secret["database-url"]).decode()
    assert url == "postgresql://postgres:s3cret-super@c-postgres-rw.ns.svc:5432/brain_ai"


def test_seed_parameters_are_defaults_and_overridable() -> None:
    args = objs(parameters={"work_mem": "64MB"})[("StatefulSet", "c-postgres-primary")]["spec"]["template"][
        "spec"
    ]["containers"][0]["args"]
    assert (
        "shared_buffers=4GB" in args and "effective_cache_size=12GB" in args and "max_connections=200" in args
    )
    assert "work_mem=64MB" in args and "work_mem=256MB" not in args
    assert "wal_level=replica" in args and "hot_standby=on" in args
    assert "max_replication_slots=20" in args


def test_slot_retention_follows_the_volume_unless_set() -> None:
    def args(**postgres: Any) -> list[str]:
        sts = objs(**postgres)[("StatefulSet", "c-postgres-primary")]
        return sts["spec"]["template"]["spec"]["containers"][0]["args"]

    assert "max_slot_wal_keep_size=5120MB" in args(storage={"size": "20Gi"})
    mine = args(storage={"size": "20Gi"}, parameters={"max_slot_wal_keep_size": "2GB"})
    assert "max_slot_wal_keep_size=2GB" in mine and "max_slot_wal_keep_size=5120MB" not in mine


def test_no_password_outside_the_secret() -> None:
    for (kind, _), obj in objs(readReplicas=1).items():
        if kind != "Secret":
            text = repr(obj)
            assert "s3cret" not in text, kind


def test_read_replicas_default_from_strategy_and_zero_means_none() -> None:
    spec = BrainAIClusterSpec.model_validate({"strategy": "query-focused", "postgres": {"enabled": True}})
    names = {o["metadata"]["name"] for o in build_desired("c", "ns", resolve(spec), PASSWORDS)}
    assert "c-postgres-replica" in names
    assert ("StatefulSet", "c-postgres-replica") not in objs(readReplicas=0)


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


def test_data_pods_spread_over_nodes_and_replicas_drain_one_at_a_time() -> None:
    found = objs(readReplicas=2)
    for role in ("primary", "replica"):
        spread = found[("StatefulSet", f"c-postgres-{role}")]["spec"]["template"]["spec"]
        spread = spread["topologySpreadConstraints"]
        # one selector over primary and replicas: the primary is kept apart from its replicas
        assert {c["topologyKey"] for c in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
        assert all("brainai.io/postgres-role" not in c["labelSelector"]["matchLabels"] for c in spread)
    budget = found[("PodDisruptionBudget", "c-postgres-replica")]["spec"]
    assert budget["maxUnavailable"] == 1
    assert budget["selector"]["matchLabels"]["brainai.io/postgres-role"] == "replica"
    assert ("PodDisruptionBudget", "c-postgres-primary") not in found  # it would forbid every drain
    assert ("PodDisruptionBudget", "c-postgres-replica") not in objs(readReplicas=0)
