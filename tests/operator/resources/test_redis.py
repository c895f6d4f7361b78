from typing import Any

from brainai_operator.api import BrainAIClusterSpec
from brainai_operator.resources.cluster import build_desired
from brainai_operator.strategies import resolve

PASSWORDS = {"redis": {"password": "r3dis-pass"}}


def objs(**redis: Any) -> dict[tuple[str, str], dict[str, Any]]:
    spec = BrainAIClusterSpec.model_validate({"redis": {"enabled": True, **redis}})
    return {(o["kind"], o["metadata"]["name"]): o for o in build_desired("c", "ns", resolve(spec), PASSWORDS)}


def test_nodes_service_and_cluster_job() -> None:
    found = objs(masters=3, replicasPerMaster=1)
    assert found[("StatefulSet", "c-redis")]["spec"]["replicas"] == 6
    assert found[("Service", "c-redis")]["spec"]["clusterIP"] == "None"
    job = found[("Job", "c-redis-cluster-n6")]
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["MASTERS"], env["REPLICAS_PER_MASTER"]) == ("3", "1")


def test_growing_makes_a_new_job() -> None:
    assert ("Job", "c-redis-cluster-n8") in objs(masters=4, replicasPerMaster=1)


def test_password_never_in_args_or_config() -> None:
    for (kind, _), obj in objs().items():
        if kind != "Secret":
            assert "r3dis-pass" not in repr(obj), kind
    engine_config = objs()[("ConfigMap", "c-engine-config")]["data"]["engine.toml"]
    assert "[redis]" in engine_config and "cluster = true" in engine_config
