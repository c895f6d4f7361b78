"""The BrainAICluster CustomResourceDefinition, generated from `api.py`.

Pydantic's JSON Schema is close to what the API server wants but not the same: a CRD needs a
*structural* schema (no $ref, every node typed, no null unions) in OpenAPI v3 dialect
(boolean exclusiveMinimum). `structural()` does that translation; nothing here is hand-written
per field, so the CRD cannot drift from the models the operator parses.
"""

from __future__ import annotations

from typing import Any

import yaml

from brainai_common.engine_config import CONSOLIDATION_PERIODS, EngineConfig
from brainai_operator import api
from brainai_operator.resources.common import CLUSTER_NAME_LIMIT, CLUSTER_NAME_PATTERN

# Engine settings the operator itself decides; they are not user overrides.
OPERATOR_OWNED_CONFIG: dict[str, set[str] | None] = {
    "server": None,  # the whole section
    "database": {"url", "read_urls"},
    "redis": {"url"},
}

_KEEP = (
    "description",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "format",
)


def _condition_field(type_: str, field: str) -> str:
    return f'.status.conditions[?(@.type=="{type_}")].{field}'


def structural(schema: dict[str, Any], defs: dict[str, Any], defaults: bool = True) -> dict[str, Any]:
    """Translate one pydantic JSON Schema node into a structural OpenAPI v3 schema node."""
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return structural(merged, defs, defaults)
    if "allOf" in schema and len(schema["allOf"]) == 1:
        merged = {**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}}
        return structural(merged, defs, defaults)

    out: dict[str, Any] = {k: schema[k] for k in _KEEP if k in schema}
    out.update({k: v for k, v in schema.items() if k.startswith("x-kubernetes-")})
    if defaults and "default" in schema and isinstance(schema["default"], str | int | float | bool):
        out["default"] = schema["default"]
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if isinstance(schema.get(bound), int | float) and not isinstance(schema[bound], bool):
            out[bound.replace("exclusiveM", "m")] = schema[bound]
            out[bound] = True
    if "const" in schema:
        out["enum"] = [schema["const"]]

    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        if out.get("x-kubernetes-int-or-string"):
            return out
        if len(options) == 1:
            inner = structural(options[0], defs, defaults)
            return {**inner, **out}
        kinds = {o.get("type") for o in options}
        if kinds == {"integer", "string"}:
            return {**out, "x-kubernetes-int-or-string": True}
        # Another mix of types cannot be structural: accept any value, the operator validates it.
        return {**out, "x-kubernetes-preserve-unknown-fields": True}

    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        out["type"] = "object"
        props = schema.get("properties", {})
        if props:
            out["properties"] = {name: structural(sub, defs, defaults) for name, sub in props.items()}
        if schema.get("required"):
            out["required"] = list(schema["required"])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = structural(extra, defs, defaults)
        elif (extra is True or extra == {}) and not props:
            out["x-kubernetes-preserve-unknown-fields"] = True
        if "propertyNames" in schema and "enum" in schema["propertyNames"] and "additionalProperties" in out:
            # dict[Literal[...], X]: fixed keys, spell them out as properties.
            value = out.pop("additionalProperties")
            out["properties"] = {key: dict(value) for key in schema["propertyNames"]["enum"]}
        return out
    if kind == "array":
        out["type"] = "array"
        out["items"] = structural(schema.get("items", {}), defs, defaults)
        return out
    if kind in ("string", "integer", "number", "boolean"):
        out["type"] = kind
        return out
    if "enum" in out:
        out["type"] = "string"
        return out
    return {**out, "x-kubernetes-preserve-unknown-fields": True}


def model_schema(model: type[api.BaseModel], defaults: bool = True) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return structural(raw, raw.get("$defs", {}), defaults)


def engine_config_schema() -> dict[str, Any]:
    """The engine's own config model as the schema of `spec.engine.config` (no defaults: overrides)."""
    schema = model_schema(EngineConfig, defaults=False)
    # A string-or-number union has no structural type and CEL cannot check an untyped field: through
    # the CRD it is a name or a whole number of seconds (int-or-string), checked like the engine does.
    periods = ", ".join(f"'{p}'" for p in sorted(CONSOLIDATION_PERIODS))
    memory = schema["properties"]["memory"]["properties"]
    memory["consolidation_frequency"] = {
        "description": memory["consolidation_frequency"]["description"],
        "x-kubernetes-int-or-string": True,
        "x-kubernetes-validations": [
            api.cel(
                f"type(self) == string ? self in [{periods}] : self >= 0",
                f"memory.consolidation_frequency must be one of {periods} or a whole number of seconds >= 0",
            )
        ],
    }
    for section, keys in OPERATOR_OWNED_CONFIG.items():
        if keys is None:
            schema["properties"].pop(section, None)
        else:
            for key in keys:
                schema["properties"][section]["properties"].pop(key, None)
    return schema


def spec_schema() -> dict[str, Any]:
    schema = model_schema(api.BrainAIClusterSpec)
    engine_config = schema["properties"]["engine"]["properties"]["config"]
    schema["properties"]["engine"]["properties"]["config"] = {
        **engine_config_schema(),
        "description": engine_config["description"],
    }
    schema["x-kubernetes-validations"] = api.CLUSTER_RULES
    return schema


def build_crd() -> dict[str, Any]:
    printer_columns = [
        {"name": "Strategy", "type": "string", "jsonPath": ".spec.strategy"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Primary", "type": "string", "jsonPath": ".status.postgres.primary"},
        {"name": "Reason", "type": "string", "jsonPath": _condition_field("Ready", "reason")},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Message", "type": "string", "jsonPath": _condition_field("Ready", "message")},
        # -o wide: each tier's own reason, the last backup, and the generation status speaks for.
        *(
            {
                "name": tier,
                "type": "string",
                "priority": 1,
                "jsonPath": _condition_field(f"{tier}Ready", "reason"),
            }
            for tier in ("Engine", "Postgres", "Redis")
        ),
        {
            "name": "Last Backup",
            "type": "date",
            "priority": 1,
            "jsonPath": ".status.postgres.backup.lastBackup.completedAt",
        },
        {"name": "Observed", "type": "integer", "priority": 1, "jsonPath": ".status.observedGeneration"},
    ]
    root = {
        "type": "object",
        "description": "A Brain AI deployment: engine pods with autoscaling, and optionally a shared "
        "PostgreSQL store and Redis Cluster, shaped by a workload strategy.",
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "APIVersion of this object (brainai.io/v1alpha1).",
            },
            "kind": {"type": "string", "description": "Kind of this object (BrainAICluster)."},
            "metadata": {"type": "object"},
            "spec": {**spec_schema(), "description": "Desired state of the Brain AI deployment."},
            "status": {
                **model_schema(api.BrainAIClusterStatus, defaults=False),
                "description": "Observed state, written by the operator.",
            },
        },
        "x-kubernetes-validations": [
            api.cel(
                f"size(self.metadata.name) <= {CLUSTER_NAME_LIMIT}",
                f"metadata.name must be at most {CLUSTER_NAME_LIMIT} characters: it is a label value on "
                "every child object",
            ),
            api.cel(
                f"self.metadata.name.matches('{CLUSTER_NAME_PATTERN}')",
                "metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', starting with "
                "a letter, no '.'): the Services made for it are named after it",
            ),
        ],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{api.PLURAL}.{api.GROUP}",
            "labels": {"app.kubernetes.io/name": "brain-ai-operator"},
        },
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": api.KIND,
                "listKind": f"{api.KIND}List",
                "plural": api.PLURAL,
                "singular": api.SINGULAR,
                "shortNames": api.SHORT_NAMES,
                "categories": ["brainai"],
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.engine.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": printer_columns,
                }
            ],
        },
    }


def crd_yaml() -> str:
    return (
        "# Generated from operator/brainai_operator/api.py by `brain-ai-operator crd`. Do not edit.\n"
        + yaml.safe_dump(build_crd(), sort_keys=False, width=120)
    )
