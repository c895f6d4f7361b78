from typing import Any

from brainai_operator.api import BrainAIClusterSpec
from brainai_operator.resources.cluster import build_desired
from brainai_operator.resources.redis import nodes_to_keep
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


def test_nodes_spread_over_nodes_and_drain_one_at_a_time() -> None:
    found = objs()
    spread = found[("StatefulSet", "c-redis")]["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["whenUnsatisfiable"] for c in spread} == {"ScheduleAnyway"}
    budget = found[("PodDisruptionBudget", "c-redis")]["spec"]
    assert budget["maxUnavailable"] == 1 and budget["selector"] == spread[0]["labelSelector"]


def test_the_cluster_jobs_pod_is_not_a_node() -> None:
    """Selected by the nodes' Service it would be handed out as a node's address; by their budget, it
    would break it (a Job has no scale subresource)."""
    found = objs()
    job_labels = found[("Job", "c-redis-cluster-n6")]["spec"]["template"]["metadata"]["labels"]
    selectors = [
        found[("Service", "c-redis")]["spec"]["selector"],
        found[("StatefulSet", "c-redis")]["spec"]["selector"]["matchLabels"],
        found[("PodDisruptionBudget", "c-redis")]["spec"]["selector"]["matchLabels"],
    ]
    for selector in selectors:
        assert not selector.items() <= job_labels.items()


def test_growing_makes_a_new_job() -> None:
    assert ("Job", "c-redis-cluster-n8") in objs(masters=4, replicasPerMaster=1)


def test_shrinking_keeps_the_leaving_nodes_until_their_job_drained_them() -> None:
    """The StatefulSet only loses nodes once the Job for the new size, run while they were all
    there, succeeded: the Job says how many nodes it saw (NODES_NOW)."""
    spec = BrainAIClusterSpec.model_validate({"redis": {"enabled": True, "masters": 3}})
    draining = {
        (o["kind"], o["metadata"]["name"]): o
        for o in build_desired("c", "ns", resolve(spec), PASSWORDS, redis_nodes=8)
    }
    assert draining[("StatefulSet", "c-redis")]["spec"]["replicas"] == 8
    job = draining[("Job", "c-redis-cluster-n6")]
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["MASTERS"], env["NODES_NOW"]) == ("3", "8")

    eight = {"spec": {"replicas": 8}}
    assert nodes_to_keep(6, eight, None) == 8
    assert nodes_to_keep(6, eight, job) == 8  # not finished
    assert nodes_to_keep(6, eight, {**job, "status": {"succeeded": 1}}) == 6
    formed_at_six = objs(masters=3)[("Job", "c-redis-cluster-n6")]  # an older Job of the same name
    assert nodes_to_keep(6, eight, {**formed_at_six, "status": {"succeeded": 1}}) == 8
    assert nodes_to_keep(8, {"spec": {"replicas": 6}}, None) == 8  # growing never waits
    assert nodes_to_keep(6, None, None) == 6


def test_password_never_in_args_or_config() -> None:
    for (kind, _), obj in objs().items():
        if kind != "Secret":
            assert "r3dis-pass" not in repr(obj), kind
    engine_config = objs()[("ConfigMap", "c-engine-config")]["data"]["engine.toml"]
    assert "[redis]" in engine_config and "cluster = true" in engine_config
