from typing import Any

from brainai_operator.api import BrainAIClusterSpec
from brainai_operator.resources.cluster import OWNED_KINDS, build_desired
from brainai_operator.resources.common import COMPONENT_LABEL, CONFIG_HASH_ANNOTATION
from brainai_operator.resources.engine import COMPONENT
from brainai_operator.strategies import resolve

# A shared store, external so that the desired set stays the engine tier's.
SHARED = {"enabled": True, "external": {"secretRef": {"name": "db", "key": "url"}}}


def desired(**spec: Any) -> dict[str, dict[str, Any]]:
    """The engine tier's objects by kind."""
    objs = build_desired("demo", "ns", resolve(BrainAIClusterSpec.model_validate(spec)))
    return {o["kind"]: o for o in objs if o["metadata"]["labels"][COMPONENT_LABEL] == COMPONENT}


def pod(objs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return objs["Deployment"]["spec"]["template"]["spec"]


def test_desired_set_is_complete_and_labelled() -> None:
    objs = desired(postgres=SHARED)
    assert set(objs) == {
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
    }
    assert {k for _, k in OWNED_KINDS} >= set(objs)
    for obj in objs.values():
        assert obj["metadata"]["namespace"] == "ns"
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "demo"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "brain-ai-operator"


def test_replicas_left_to_the_hpa() -> None:
    assert "replicas" not in desired(postgres=SHARED)["Deployment"]["spec"]
    manual = desired(engine={"replicas": 4}, autoscaling={"enabled": False}, postgres=SHARED)
    assert manual["Deployment"]["spec"]["replicas"] == 4
    assert "HorizontalPodAutoscaler" not in manual


def test_the_embedded_store_runs_one_engine_pod_and_no_hpa() -> None:
    objs = desired()
    assert objs["Deployment"]["spec"]["replicas"] == 1
    assert "HorizontalPodAutoscaler" not in objs
    assert desired(engine={"replicas": 0})["Deployment"]["spec"]["replicas"] == 0


def test_pod_is_locked_down_and_probed_with_seed_timings() -> None:
    spec = pod(desired())
    (container,) = spec["containers"]
    assert container["args"] == ["serve", "--config", "/etc/brain-ai/engine.toml"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    live, ready = container["livenessProbe"], container["readinessProbe"]
    assert (live["httpGet"]["path"], live["initialDelaySeconds"], live["periodSeconds"]) == (
        "/health",
        30,
        10,
    )
    assert (ready["httpGet"]["path"], ready["initialDelaySeconds"], ready["periodSeconds"]) == (
        "/ready",
        5,
        5,
    )
    # Loading a large store happens before the server listens: startup covers it, not liveness.
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/health"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600 and startup["periodSeconds"] <= 2
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/etc/brain-ai", "/var/lib/brain-ai", "/tmp"} <= mounts  # writable paths despite read-only root


def test_config_change_rolls_pods() -> None:
    a = desired()["Deployment"]["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    b = desired(engine={"config": {"memory": {"working_memory_size": 5000}}})
    assert b["Deployment"]["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] != a
    assert "working_memory_size = 5000" in b["ConfigMap"]["data"]["engine.toml"]
    same = desired()["Deployment"]["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    assert same == a  # deterministic


def test_auth_token_comes_from_the_secret_as_a_file() -> None:
    objs = desired(engine={"authTokenSecretRef": {"name": "engine-token", "key": "token"}})
    volume = next(v for v in pod(objs)["volumes"] if v["name"] == "auth")
    assert volume["secret"]["secretName"] == "engine-token"
    assert 'auth_token_file = "/etc/brain-ai-auth/token"' in objs["ConfigMap"]["data"]["engine.toml"]
    assert "engine-token" not in objs["ConfigMap"]["data"]["engine.toml"]


def test_scheduling_passes_through_and_spread_has_a_default() -> None:
    default = pod(desired())["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in default] == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    custom = pod(
        desired(
            scheduling={
                "nodeSelector": {"disk": "ssd"},
                "priorityClassName": "high",
                "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                "topologySpreadConstraints": [
                    {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}
                ],
            }
        )
    )
    assert custom["nodeSelector"] == {"disk": "ssd"} and custom["priorityClassName"] == "high"
    assert custom["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert custom["topologySpreadConstraints"][0]["maxSkew"] == 2


def test_service_pdb_and_network_policy_select_the_engine_pods() -> None:
    objs = desired(engine={"port": 9000})
    selector = objs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert objs["Service"]["spec"]["selector"] == selector
    assert objs["Service"]["spec"]["ports"][0]["port"] == 9000
    assert objs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    assert objs["NetworkPolicy"]["spec"]["ingress"] == [{"ports": [{"port": 9000, "protocol": "TCP"}]}]


def test_rendered_config_is_accepted_by_the_engine(tmp_path: Any) -> None:
    """What the ConfigMap carries must load in the engine, for every strategy and tier mix."""
    from brainai_common.engine_config import load_config
    from brainai_operator.resources.engine import render_engine_config

    for strategy in ("balanced", "learning-focused", "query-focused"):
        spec = BrainAIClusterSpec.model_validate(
            {
                "strategy": strategy,
                "postgres": {"enabled": True},
                "redis": {"enabled": True},
                "engine": {"authTokenSecretRef": {"name": "t", "key": "k"}, "logLevel": "debug"},
            }
        )
        path = tmp_path / f"{strategy}.toml"
        path.write_text(render_engine_config(resolve(spec)))
        (tmp_path / "token").write_text("s3cret")
        text = path.read_text().replace("/etc/brain-ai-auth/token", str(tmp_path / "token"))
        path.write_text(text)
        config = load_config(path, env={})
        assert config.server.host == "0.0.0.0" and config.server.data_dir == "/var/lib/brain-ai"
        assert config.redis.cluster is True and config.system.log_level == "debug"
        assert config.server.auth_token == "s3cret"
