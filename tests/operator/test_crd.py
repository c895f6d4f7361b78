from pathlib import Path
from typing import Any

from brainai_operator.crd import build_crd, crd_yaml

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "brainai.io_brainaiclusters.yaml"


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)]
    for name, sub in (schema.get("properties") or {}).items():
        found += walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        found += walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += walk(schema["additionalProperties"], f"{path}{{}}")
    return found


def root() -> dict[str, Any]:
    return build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_committed_crd_matches_the_models() -> None:
    assert CRD_FILE.read_text() == crd_yaml(), "crds/ is stale: run `make crds`"


def test_schema_is_structural() -> None:
    for path, node in walk(root()):
        assert not {"$ref", "$defs", "title", "allOf", "oneOf"} & set(node), path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), path
        typed = (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        )
        assert typed, f"{path} has no type"
        assert not isinstance(node.get("exclusiveMinimum"), int | float) or isinstance(
            node["exclusiveMinimum"], bool
        ), path


def test_every_spec_field_is_explained() -> None:
    spec = root()["properties"]["spec"]
    undocumented = [
        p
        for p, node in walk(spec, "spec")
        if p.count(".") >= 1 and not node.get("description") and not p.endswith("[]") and not p.endswith("}")
    ]
    assert undocumented == []


def test_engine_config_schema_comes_from_the_engine_model() -> None:
    config = root()["properties"]["spec"]["properties"]["engine"]["properties"]["config"]
    assert config["properties"]["memory"]["properties"]["working_memory_size"]["minimum"] == 1
    assert "server" not in config["properties"]  # decided by the operator
    assert "url" not in config["properties"]["database"]["properties"]
    assert all("default" not in node for _, node in walk(config))  # overrides only: nothing filled in


def test_scale_subresource_and_printer_columns() -> None:
    version = build_crd()["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.engine.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Strategy",
        "Replicas",
        "Ready",
        "Phase",
        "Primary",
        "Reason",
        "Age",
        "Message",
        "Engine",
        "Postgres",
        "Redis",
        "Last Backup",
        "Observed",
    ]
    wide = {c["name"] for c in version["additionalPrinterColumns"] if c.get("priority") == 1}
    # -o wide adds the tiers' own reasons and when the last backup ended
    assert wide == {"Engine", "Postgres", "Redis", "Last Backup", "Observed"}
    assert build_crd()["spec"]["names"]["shortNames"] == ["bac", "brain"]
