"""The BrainAICluster API (brainai.io/v1alpha1): pydantic models, the single source of the CRD.

`crd.py` turns these models into the CustomResourceDefinition, so field names, descriptions
(`kubectl explain`), enums, bounds and CEL rules are written once, here. The operator parses the
same models, so what the API server accepted is what the reconciler sees.

Fields a strategy decides (replicas, autoscaling bounds, ...) default to None: `strategies.py`
fills them, and an explicit value in the spec wins.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from kubernetes.utils.quantity import parse_quantity
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "brainai.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "BrainAICluster"
PLURAL = "brainaiclusters"
SINGULAR = "brainaicluster"
SHORT_NAMES = ["bac", "brain"]

# Kubernetes resource.Quantity: the API server's grammar (number, then a binary/decimal suffix or exponent).
QUANTITY_PATTERN = (  # sizes only: no sign
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?[0-9]+))?$"  # an exponent is a whole number
)
DURATION_PATTERN = r"^[1-9][0-9]*(s|m|h|d)$"  # a zero window or interval means nothing
# Printable ASCII without spaces: RE2 (the API server) and Python read this class the same way,
# where `\s` differs (ASCII there, Unicode here), so admission and the reconciler agree.
IMAGE_PATTERN = r"^[!-~]+$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Label keys and values as the API server checks them (optional DNS prefix, 63-character name).
# `[.]`, not an escaped dot: the key pattern also sits inside a CEL string, where `\.` is no escape.
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
SECRET_DATA_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"  # what a Secret's data may be keyed by


def cel(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> JsonDict:
    """One `x-kubernetes-validations` entry; messages should name the field they are about."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def immutable(what: str) -> dict[str, Any]:
    return {"x-kubernetes-validations": [cel("self == oldSelf", f"{what} is immutable")]}


MAX_LABELS = 64


def _label_keys(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    bad = [k for k in labels if not re.match(LABEL_KEY_PATTERN, k)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a label key ([prefix/]name, name 1-63 of [A-Za-z0-9-_.])")
    return labels


# A map of Kubernetes labels: keys checked by CEL (a schema cannot pattern map keys) and here alike.
LabelMap = Annotated[
    dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]],
    AfterValidator(_label_keys),
]


def label_map_field(description: str) -> Any:
    return Field(
        default=None,
        description=description,
        json_schema_extra={
            "maxProperties": MAX_LABELS,  # also bounds what the CEL rule may cost
            "x-kubernetes-validations": [
                cel(
                    f"self.all(k, k.matches('{LABEL_KEY_PATTERN}'))",
                    "keys must be label keys: [prefix/]name, the name 1-63 characters of [A-Za-z0-9-_.] "
                    "starting and ending with a letter or digit",
                )
            ],
        },
    )


class KubeModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error, as in the CRD."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", use_enum_values=True
    )

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Strategy(StrEnum):
    LEARNING_FOCUSED = "learning-focused"
    QUERY_FOCUSED = "query-focused"
    BALANCED = "balanced"


Quantity = Annotated[
    Annotated[int, Field(ge=0)] | Annotated[str, Field(pattern=QUANTITY_PATTERN)],
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]


RESOURCE_BOUNDS = (("cpu", "1024", "1024 cores"), ("memory", "16Ti", "16Ti"))


class ResourceList(KubeModel):
    # Every CEL rule here has its Python twin below: admission and the reconciler must agree.
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"!has(self.{r}) || (quantity(string(self.{r})).compareTo(quantity('0')) >= 0 && "
                    f"quantity(string(self.{r})).compareTo(quantity('{top}')) <= 0)",
                    f"{r} must be between 0 and {shown}",
                    field_path=f".{r}",
                )
                for r, top, shown in RESOURCE_BOUNDS
            ]
        }
    )

    cpu: Quantity | None = Field(default=None, description="CPU, in cores or millicores (e.g. 500m, 2).")
    memory: Quantity | None = Field(default=None, description="Memory, in bytes (e.g. 1Gi, 512Mi).")

    @model_validator(mode="after")
    def _bounded(self) -> ResourceList:
        for r, top, shown in RESOURCE_BOUNDS:
            value = getattr(self, r)
            if value is not None and not 0 <= parse_quantity(value) <= parse_quantity(top):
                raise ValueError(f"{r} must be between 0 and {shown}")
        return self


def _not_above(resource: str) -> str:
    return (
        f"!has(self.requests) || !has(self.limits) || !has(self.requests.{resource}) || "
        f"!has(self.limits.{resource}) || quantity(string(self.requests.{resource}))"
        f".compareTo(quantity(string(self.limits.{resource}))) <= 0"
    )


class ComputeResources(KubeModel):
    """Requests and limits for cpu and memory (the engine needs no other resource)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    _not_above(r),
                    f"requests.{r} must be less than or equal to limits.{r}",
                    field_path=f".requests.{r}",
                )
                for r in ("cpu", "memory")
            ]
        }
    )

    requests: ResourceList | None = Field(
        default=None, description="Minimum resources the scheduler reserves, e.g. {cpu: 500m, memory: 1Gi}."
    )
    limits: ResourceList | None = Field(
        default=None, description="Maximum resources; memory over the limit restarts the pod."
    )

    @model_validator(mode="after")
    def _requests_not_above_limits(self) -> ComputeResources:
        for r in ("cpu", "memory"):
            request = getattr(self.requests, r, None) if self.requests else None
            limit = getattr(self.limits, r, None) if self.limits else None
            if request is not None and limit is not None and parse_quantity(request) > parse_quantity(limit):
                raise ValueError(f"requests.{r} must be less than or equal to limits.{r}")
        return self


class SecretKeyRef(KubeModel):
    name: str = Field(
        description="Name of a Secret in the BrainAICluster's namespace.",
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
    )
    key: str = Field(
        description="Key within the Secret (letters, digits, '-', '_' and '.').",
        min_length=1,
        max_length=253,
        pattern=SECRET_DATA_KEY_PATTERN,
    )


class EngineSpec(KubeModel):
    """The engine tier: the Deployment of Brain AI engine pods and what they run."""

    image: str = Field(
        default="brain-ai/engine:0.1.0",
        min_length=1,
        max_length=512,
        pattern=IMAGE_PATTERN,
        description="Engine container image.",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="When the kubelet pulls the image."
    )
    image_pull_secrets: (
        list[Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]] | None
    ) = Field(default=None, max_length=16, description="Names of Secrets used to pull the image.")
    replicas: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="Engine pods when autoscaling is disabled (the /scale subresource sets this). "
        "Must be unset while autoscaling is enabled: the HPA owns the count then. "
        "Default: 3 with spec.postgres.enabled (the scaling guide's Deployment); on the embedded store "
        "1, and at most 1.",
    )
    resources: ComputeResources | None = Field(
        default=None,
        description="CPU and memory for each engine pod. Default comes from the strategy "
        "(the scaling guide's 500m/1Gi requests, 1 CPU/2Gi limits for balanced).",
    )
    config: dict[str, Any] | None = Field(
        default=None,
        description="Engine configuration overrides, in the engine's TOML sections "
        "(system, memory, learning, concepts, search, storage, performance, metrics). "
        "Applied over the strategy's settings; validated against the engine's config model.",
    )
    auth_token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Bearer token the engine API requires, from a Secret. Unset: no auth."
    )
    port: int = Field(default=8080, ge=1024, le=65535, description="Container port of the engine HTTP API.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Engine log level."
    )


class ScalingPolicy(KubeModel):
    stabilization_window_seconds: int | None = Field(
        default=None, ge=0, le=3600, description="How far back the HPA looks before changing replicas."
    )
    percent: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Largest change, as a percentage of current replicas, per period.",
    )
    period_seconds: int | None = Field(
        default=None, ge=1, le=1800, description="Length of the period the percentage applies to."
    )


class ScalingBehavior(KubeModel):
    scale_up: ScalingPolicy | None = Field(
        default=None, description="How fast to add pods (default: 100% per 15s after a 60s window)."
    )
    scale_down: ScalingPolicy | None = Field(
        default=None, description="How fast to remove pods (default: 10% per 60s after a 300s window)."
    )


class AutoscalingPreset(StrEnum):
    STANDARD = "standard"
    COST_OPTIMIZED = "cost-optimized"


class AutoscalingSpec(KubeModel):
    """A HorizontalPodAutoscaler (autoscaling/v2) on the engine Deployment."""

    enabled: bool | None = Field(
        default=None,
        description="Create an HPA that owns the engine replica count. Unset: on with a shared store "
        "(spec.postgres.enabled), off on the embedded store, where only one engine pod can run.",
    )
    preset: AutoscalingPreset = Field(
        default=AutoscalingPreset.STANDARD,
        description="standard: the scaling guide's 3-20 replicas, CPU 70%, memory 80%. cost-optimized: 2-10 "
        "replicas, CPU 75%, slower scale-down (600s window). Explicit fields override it.",
    )
    min_replicas: int | None = Field(default=None, ge=1, le=1000, description="Fewest engine pods.")
    max_replicas: int | None = Field(default=None, ge=1, le=1000, description="Most engine pods.")
    target_cpu_utilization: int | None = Field(
        default=None, ge=1, le=100, description="Average CPU, percent of requests, the HPA aims for."
    )
    target_memory_utilization: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Average memory, percent of requests, the HPA aims for. "
        "0 (or unset with cost-optimized): memory is not a target.",
    )
    behavior: ScalingBehavior | None = Field(default=None, description="Scale-up and scale-down rates.")


class SchedulingSpec(KubeModel):
    """Where engine pods may run. Passed through to the pod spec unchanged."""

    node_selector: LabelMap | None = label_map_field("Node labels pods require.")
    affinity: dict[str, Any] | None = Field(default=None, description="A core/v1 Affinity.")
    tolerations: list[dict[str, Any]] | None = Field(
        default=None, max_length=64, description="core/v1 Tolerations."
    )
    topology_spread_constraints: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=16,
        description="core/v1 TopologySpreadConstraints. Unset: spread across zones and nodes, best effort.",
    )
    priority_class_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="PriorityClass of engine pods.",
    )


def storage_class_stays(tier: str) -> JsonDict:
    """Adding or removing a StorageClass after creation would move nothing: claims keep theirs."""
    has = "has({0}.storage) && has({0}.storage.storageClassName)"
    return cel(
        f"({has.format('oldSelf')}) == ({has.format('self')})",
        f"spec.{tier}.storage.storageClassName is immutable: it cannot be added or removed after "
        "creation either (existing claims keep their StorageClass)",
        field_path=".storage",
    )


class StorageSpec(KubeModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.size) || (quantity(string(self.size)).compareTo(quantity('1Mi')) >= 0 && "
                    "quantity(string(self.size)).compareTo(quantity('64Ti')) <= 0)",
                    "size must be between 1Mi and 64Ti",
                    field_path=".size",
                ),
                cel(
                    "!has(oldSelf.size) || !has(self.size) || "
                    "quantity(string(self.size)).compareTo(quantity(string(oldSelf.size))) >= 0",
                    "size cannot shrink: a claim can only grow (growing needs a StorageClass that allows "
                    "volume expansion)",
                    field_path=".size",
                ),
            ]
        }
    )

    size: Quantity = Field(
        default="10Gi",
        description="Size of each PersistentVolumeClaim. Can grow (the claims are expanded where their "
        "StorageClass allows volume expansion), never shrink.",
    )

    @model_validator(mode="after")
    def _size_bounded(self) -> StorageSpec:
        if not parse_quantity("1Mi") <= parse_quantity(self.size) <= parse_quantity("64Ti"):
            raise ValueError("size must be between 1Mi and 64Ti")
        return self

    retention: Literal["Retain", "Delete"] = Field(
        default="Retain",
        description="What happens to the claims when the BrainAICluster (or a pod, on scale-in) goes away: "
        "Retain keeps the data for a later cluster of the same name; Delete removes it.",
    )
    storage_class_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        json_schema_extra=immutable("storageClassName"),
        description="StorageClass of the claims; unset: the cluster default. Immutable: claims cannot move.",
    )


# The scaling guide's postgresql.conf tuning; every key can be overridden through spec.postgres.parameters.
POSTGRES_PARAMETERS: dict[str, str] = {
    "shared_buffers": "4GB",
    "effective_cache_size": "12GB",
    "work_mem": "256MB",
    "maintenance_work_mem": "1GB",
    "checkpoint_completion_target": "0.9",
    "wal_buffers": "64MB",
    "default_statistics_target": "500",
    "max_connections": "200",
}
PARAMETER_NAME_PATTERN = r"^[a-z][a-z0-9_.]*$"
# Streaming replication and Patroni need these as they set them; an override would break the
# replicas or be ignored.
REPLICATION_PARAMETERS = (
    "wal_level",
    "hot_standby",
    "max_wal_senders",
    "max_replication_slots",
    "listen_addresses",
    "port",
    "cluster_name",
    "wal_log_hints",
    "unix_socket_directories",
)


class ExternalRef(KubeModel):
    """An existing service, reached through a URL kept in a Secret."""

    secret_ref: SecretKeyRef = Field(description="Secret key holding the connection URL.")
    read_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding a read-replica URL (PostgreSQL only; optional)."
    )


def _cron_field(numbers: str, names: tuple[str, ...] = ()) -> str:
    """One cron field as a CronJob takes it: *, ?, values, ranges, steps and lists."""
    words = "|".join(w for n in names for w in (n, n.capitalize(), n.upper()))
    atom = f"({numbers}{'|' + words if words else ''})"
    item = rf"(\*|\?|{atom}(-{atom})?)(/[1-9][0-9]*)?"
    return rf"{item}(,{item})*"


MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
CRON_FIELDS = (
    _cron_field("[0-5]?[0-9]"),
    _cron_field("[01]?[0-9]|2[0-3]"),
    _cron_field("0?[1-9]|[12][0-9]|3[01]"),
    _cron_field("0?[1-9]|1[0-2]", MONTHS),
    _cron_field("[0-6]", WEEKDAYS),  # CronJob takes 0-6 only (not 7 for Sunday)
)
# Five cron fields within their ranges, or one of the CronJob's @ macros.
CRON_PATTERN = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
    + " +".join(f"({f})" for f in CRON_FIELDS)
    + r")$"
)


def check_cron_ranges(schedule: str) -> None:
    """What the pattern cannot say: a range must not run backwards (a CronJob refuses 5-2)."""
    values = {name: i for names in (MONTHS, WEEKDAYS) for i, name in enumerate(names, start=names is MONTHS)}
    for part in re.split(r"[ ,]+", schedule.strip()):
        bounds = part.split("/")[0].split("-")
        if len(bounds) == 2:
            low, high = (int(b) if b.isdigit() else values[b.lower()] for b in bounds)
            if low > high:
                raise ValueError(f"spec.postgres.backup.schedule: range {part} runs backwards")


# RFC 3339 with each field in its range (the API server's date-time format alone lets 13-45 through).
RFC3339_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)


class S3Repository(KubeModel):
    """An S3-compatible bucket holding a pgBackRest repository."""

    bucket: str = Field(
        min_length=3, max_length=63, pattern=DNS_SUBDOMAIN_PATTERN, description="Bucket name."
    )
    endpoint: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?$",
        description="Host (and port) of the S3 API, without scheme, e.g. s3.eu-west-1.amazonaws.com.",
    )
    region: str = Field(
        default="us-east-1",
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9-]+$",
        description="Region the bucket is in (signs requests; most S3-compatible stores take any).",
    )
    path: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^/[-A-Za-z0-9_./]*$",
        description="Path of the repository in the bucket. Default /<namespace>/<cluster>.",
    )
    uri_style: Literal["host", "path"] = Field(
        default="host", description="host: bucket.endpoint (AWS); path: endpoint/bucket (most others)."
    )
    verify_tls: bool = Field(default=True, description="Verify the endpoint's TLS certificate.")
    credentials: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Secret in the cluster's namespace with keys access-key-id and secret-access-key.",
    )


class VolumeRepository(KubeModel):
    size: Quantity = Field(default="20Gi", description="Size of the repository's PersistentVolumeClaim.")
    storage_class_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        json_schema_extra=immutable("storageClassName"),
        description="StorageClass of the claim; unset: the cluster default.",
    )


class BackupSpec(KubeModel):
    """pgBackRest base backups and continuous WAL archiving."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.volume) || !has(self.s3)",
                    "spec.postgres.backup: set volume or s3, not both",
                    field_path=".s3",
                )
            ]
        }
    )

    schedule: str = Field(
        default="0 2 * * *",
        max_length=100,
        pattern=CRON_PATTERN,
        description="When full backups are taken (cron, in the controller manager's time zone, usually "
        "UTC). Default 0 2 * * * (daily at 02:00). Annotate the BrainAICluster with "
        "brainai.io/backup-request=<any new value> for one now.",
    )
    retention: int = Field(
        default=7,
        ge=1,
        le=9999,
        description="Full backups kept; older ones, and the WAL only they need, are expired after each "
        "backup. Default 7.",
    )
    volume: VolumeRepository | None = Field(
        default=None,
        description="Keep the repository on a PersistentVolumeClaim (the default): "
        "repo-<cluster>-postgres-repo-0, which is kept when the BrainAICluster is deleted.",
    )
    s3: S3Repository | None = Field(
        default=None, description="Keep the repository in an S3-compatible bucket."
    )

    @model_validator(mode="after")
    def _one_repository(self) -> BackupSpec:
        if self.volume is not None and self.s3 is not None:
            raise ValueError("spec.postgres.backup: set volume or s3, not both")
        check_cron_ranges(self.schedule)
        return self


class RestoreSpec(KubeModel):
    """Bootstrap the database from another cluster's backups instead of an empty one."""

    from_cluster: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="The BrainAICluster (in this namespace, deleted or not) whose backups to restore; "
        "its repository volume repo-<name>-postgres-repo-0 unless s3 is given.",
    )
    target_time: str | None = Field(
        default=None,
        pattern=RFC3339_PATTERN,
        json_schema_extra={"format": "date-time"},
        description="Recover to this moment (RFC 3339) from the newest backup before it plus archived "
        "WAL; it must lie after that backup ended and before the last archived WAL. Unset: as far as "
        "the archived WAL goes.",
    )
    s3: S3Repository | None = Field(
        default=None,
        description="The source's S3 repository (its path defaults to /<namespace>/<fromCluster>).",
    )

    @field_validator("target_time")
    @classmethod
    def _real_moment(cls, value: str | None) -> str | None:
        """The pattern admits 02-31; a real calendar does not."""
        if value is not None:
            try:
                dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as err:
                raise ValueError(
                    f"spec.postgres.restore.targetTime: {value} is not a moment ({err})"
                ) from None
        return value


class PostgresSpec(KubeModel):
    """PostgreSQL primary and streaming read replicas as the engines' shared store."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.external) || !has(self.readReplicas)",
                    "spec.postgres.readReplicas does not apply to an external database",
                    field_path=".readReplicas",
                ),
                cel(
                    "!has(self.external) || !has(self.synchronous)",
                    "spec.postgres.synchronous does not apply to an external database",
                    field_path=".synchronous",
                ),
                cel(
                    "!has(self.parameters) || "
                    + " && ".join(f"!('{p}' in self.parameters)" for p in REPLICATION_PARAMETERS),
                    "spec.postgres.parameters must not set "
                    + ", ".join(REPLICATION_PARAMETERS)
                    + ": the operator and Patroni set them for streaming replication",
                    field_path=".parameters",
                ),
                cel(
                    "!has(oldSelf.image) || !has(self.image) || "
                    + " == ".join(f"{s}.image.find('[^/]+$').find(':[0-9]+')" for s in ("oldSelf", "self")),
                    "spec.postgres.image must keep its PostgreSQL major version: a data directory is "
                    "readable only by the major version that created it (dump and restore to upgrade)",
                    field_path=".image",
                    reason="FieldValueForbidden",
                ),
                storage_class_stays("postgres"),
                cel(
                    "!has(self.external) || (!has(self.backup) && !has(self.restore))",
                    "spec.postgres.backup and spec.postgres.restore do not apply to an external database",
                    field_path=".backup",
                ),
                cel(
                    "has(oldSelf.restore) == has(self.restore) && "
                    "(!has(self.restore) || self.restore == oldSelf.restore)",
                    "spec.postgres.restore is set when the database is created and cannot change afterwards",
                    field_path=".restore",
                    reason="FieldValueForbidden",
                ),
            ]
        }
    )

    enabled: bool = Field(
        default=False,
        description="Use PostgreSQL as the engines' shared store, which more than one engine pod "
        "(and autoscaling) needs. Unset or false: one engine pod on its embedded SQLite store.",
    )
    external: ExternalRef | None = Field(
        default=None,
        description="Use an existing database instead of running one: its URL comes from a Secret.",
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        pattern=IMAGE_PATTERN,
        description="PostgreSQL image; it runs Patroni, so it must carry Patroni 3 and pgBackRest "
        "besides PostgreSQL (as the project's brain-ai/postgres does; the official postgres image does "
        "not). Unset: the operator's default (its --postgres-image, brain-ai/postgres:15). Its major "
        "version cannot change once the database exists.",
    )
    synchronous: bool | None = Field(
        default=None,
        description="Synchronous replication: a write is acknowledged only once every running "
        "replica also has it, so a failover (to any of them) never loses an acknowledged write, at "
        "the cost of a network round trip per commit. Default false: asynchronous, and a failover may "
        "lose the last writes the leader "
        "acknowledged (at most maximum_lag_on_failover, 1 GiB of WAL). With no read replica running "
        "writes go on, acknowledged by the leader alone (Patroni's non-strict synchronous mode).",
    )
    read_replicas: int | None = Field(
        default=None, ge=0, le=15, description="Streaming read replicas. Default from the strategy."
    )
    storage: StorageSpec | None = Field(default=None, description="Volumes of the database pods.")
    resources: ComputeResources | None = Field(
        default=None,
        description="CPU and memory of each database pod (default 1 CPU/4Gi request, 2 CPU/8Gi limit).",
    )
    parameters: dict[str, str] | None = Field(
        default=None,
        max_length=64,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"self.all(k, k.matches('{PARAMETER_NAME_PATTERN}') && size(k) <= 63)",
                    "spec.postgres.parameters keys must be postgresql.conf setting names "
                    "(lowercase letters, digits, _ and .)",
                )
            ]
        },
        description="postgresql.conf settings over the scaling guide's defaults "
        "(shared_buffers 4GB, effective_cache_size 12GB, work_mem 256MB, maintenance_work_mem 1GB, "
        "checkpoint_completion_target 0.9, wal_buffers 64MB, default_statistics_target 500, "
        "max_connections 200).",
    )
    backup: BackupSpec | None = Field(
        default=None,
        description="Scheduled and on-demand backups with continuous WAL archiving (pgBackRest). "
        "Unset: none.",
    )
    restore: RestoreSpec | None = Field(
        default=None, description="Create the database from a backup (set at creation only)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> PostgresSpec:
        if self.external is not None and (self.backup is not None or self.restore is not None):
            raise ValueError(
                "spec.postgres.backup and spec.postgres.restore do not apply to an external database"
            )
        if self.external is not None and self.read_replicas is not None:
            raise ValueError("spec.postgres.readReplicas does not apply to an external database")
        if self.external is not None and self.synchronous is not None:
            raise ValueError("spec.postgres.synchronous does not apply to an external database")
        parameters = self.parameters or {}
        if any(not re.match(PARAMETER_NAME_PATTERN, k) or len(k) > 63 for k in parameters):
            raise ValueError("spec.postgres.parameters keys must be postgresql.conf setting names")
        owned = [p for p in REPLICATION_PARAMETERS if p in parameters]
        if owned:
            raise ValueError(f"spec.postgres.parameters must not set {', '.join(owned)}")
        return self


class RedisSpec(KubeModel):
    """Redis Cluster as the engines' shared cache and change feed."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [storage_class_stays("redis")]})

    enabled: bool = Field(default=False, description="Give the engines a Redis Cluster.")
    external: ExternalRef | None = Field(
        default=None,
        description="Use an existing Redis Cluster instead of running one: its URL comes from a Secret.",
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        pattern=IMAGE_PATTERN,
        description="Redis image. Unset: the operator's default (its --redis-image; the Helm chart's "
        "brain-ai/redis:7.0, else redis:7.0).",
    )
    masters: int = Field(
        default=3,
        ge=3,
        le=100,
        description="Master nodes (3 or more). Growing adds masters and rebalances slots onto them; "
        "shrinking moves the slots of the nodes that leave (the highest ordinals) onto the others "
        "before the StatefulSet removes them.",
    )
    replicas_per_master: int = Field(default=1, ge=0, le=5, description="Replicas of each master.")
    storage: StorageSpec | None = Field(
        default=None, description="Volumes of the Redis nodes (AOF and nodes.conf)."
    )
    resources: ComputeResources | None = Field(
        default=None,
        description="CPU and memory of each Redis node (default 250m/512Mi request, 1 CPU/1Gi limit).",
    )


class AlertThresholds(KubeModel):
    """When the scaling guide's alerts fire."""

    cpu_percent: int = Field(
        default=80,
        ge=1,
        le=100,
        description="HighCPUUsage: engine CPU, percent of its limit, sustained for 5 minutes.",
    )
    memory_percent: int = Field(
        default=85,
        ge=1,
        le=100,
        description="HighMemoryUsage: engine working set, "
        "percent of its memory limit, sustained for 5 minutes.",
    )
    p95_latency_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="SlowResponseTime: 95th percentile HTTP latency, sustained for 2 minutes.",
    )


class MonitoringSpec(KubeModel):
    """Prometheus integration through the Prometheus Operator's CRDs."""

    enabled: bool = Field(
        default=False, description="Create a ServiceMonitor and PrometheusRule when those CRDs exist."
    )
    interval: str = Field(
        default="30s",
        pattern=r"^[1-9][0-9]*(ms|s|m|h)$",
        description="How often Prometheus scrapes the engine pods (the scaling guide's metrics_interval).",
    )
    labels: LabelMap | None = label_map_field(
        "Extra labels on the ServiceMonitor and PrometheusRule, e.g. the `release` label a Prometheus "
        "selects them by."
    )
    alerts: AlertThresholds | None = Field(
        default=None, description="Alert thresholds (the scaling guide's by default)."
    )
    prometheus_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[!-~]+$",
        description="Prometheus the advisor reads this cluster's usage from (overrides the operator's "
        "--prometheus-url). Engine pods must be scraped with namespace and service labels, as a "
        "ServiceMonitor does.",
    )
    window: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        description="How much history the advisor's recommendations are computed over, e.g. 1h or 1d "
        "(default: the operator's --advisor-window, 1h).",
    )


def _quantity_not_above(low: str, high: str) -> str:
    return (
        f"!has(self.{low}) || !has(self.{high}) || "
        f"quantity(string(self.{low})).compareTo(quantity(string(self.{high}))) <= 0"
    )


class AutopilotBounds(KubeModel):
    """The range autopilot may move settings within; unset bounds do not limit."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.minReplicas) || !has(self.maxReplicas) || "
                    "self.minReplicas <= self.maxReplicas",
                    "spec.autopilot.bounds.minReplicas must be less than or equal to maxReplicas",
                    field_path=".minReplicas",
                ),
                cel(
                    _quantity_not_above("cpuRequestMin", "cpuRequestMax"),
                    "spec.autopilot.bounds.cpuRequestMin must be less than or equal to cpuRequestMax",
                    field_path=".cpuRequestMin",
                ),
                cel(
                    _quantity_not_above("memoryRequestMin", "memoryRequestMax"),
                    "spec.autopilot.bounds.memoryRequestMin must be less than or equal to memoryRequestMax",
                    field_path=".memoryRequestMin",
                ),
            ]
        }
    )

    min_replicas: int | None = Field(
        default=None, ge=1, le=1000, description="Floor: autopilot never sets the HPA's minReplicas below it."
    )
    max_replicas: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Ceiling: autopilot never sets the HPA's maxReplicas above it.",
    )
    cpu_request_min: Quantity | None = Field(default=None, description="Smallest CPU request per pod.")
    cpu_request_max: Quantity | None = Field(default=None, description="Largest CPU request per pod.")
    memory_request_min: Quantity | None = Field(default=None, description="Smallest memory request per pod.")
    memory_request_max: Quantity | None = Field(default=None, description="Largest memory request per pod.")

    @model_validator(mode="after")
    def _ordered(self) -> AutopilotBounds:
        pairs: list[tuple[str, int | str | None, str, int | str | None]] = [
            ("minReplicas", self.min_replicas, "maxReplicas", self.max_replicas)
        ]
        pairs += [
            ("cpuRequestMin", self.cpu_request_min, "cpuRequestMax", self.cpu_request_max),
            ("memoryRequestMin", self.memory_request_min, "memoryRequestMax", self.memory_request_max),
        ]
        for low_name, low, high_name, high in pairs:
            if low is not None and high is not None and parse_quantity(low) > parse_quantity(high):
                raise ValueError(
                    f"spec.autopilot.bounds.{low_name} must be less than or equal to {high_name}"
                )
        return self


class AutopilotSpec(KubeModel):
    """Apply the advisor's recommendations to the running engine, within bounds.

    Recommendations change what the operator deploys, never the spec: GitOps keeps owning the spec,
    and turning autopilot off returns to exactly what the spec says.
    """

    enabled: bool = Field(
        default=False,
        description="Apply status.recommendations (resources, HPA bounds) to the engine. "
        "Off: recommendations are only reported.",
    )
    bounds: AutopilotBounds | None = Field(default=None, description="Limits on what autopilot may set.")
    allow_strategy_change: bool = Field(
        default=False, description="Let autopilot switch the strategy (this rolls the engine pods)."
    )
    max_changes_per_hour: int = Field(
        default=2,
        ge=0,
        le=60,
        description="At most this many autopilot changes in any hour (each change may roll the engine pods).",
    )


METRICS_OFF_BUT_SCRAPED = (
    "spec.engine.config.metrics.enabled: false turns the engine's /metrics off, which "
    "spec.monitoring.enabled: true has Prometheus scrape: enable one, not both"
)
NEEDS_SHARED_STORE = (
    "needs spec.postgres.enabled: true: on the embedded SQLite store each engine pod keeps its own "
    "memories, so a second pod would answer from a different store"
)


class BrainAIClusterSpec(KubeModel):
    strategy: Strategy = Field(
        default=Strategy.BALANCED,
        description="Workload strategy. learning-focused: more learning workers and larger batches. "
        "query-focused: query cache, precomputed indexes, more read capacity. "
        "balanced: both, adaptive scaling. Explicit fields override what it chooses.",
    )
    paused: bool = Field(
        default=False, description="Stop reconciling: children are left as they are and status says Paused."
    )
    engine: EngineSpec = Field(default_factory=EngineSpec, description="The engine tier.")
    autoscaling: AutoscalingSpec = Field(
        default_factory=AutoscalingSpec, description="Horizontal autoscaling of the engine tier."
    )
    scheduling: SchedulingSpec | None = Field(default=None, description="Placement of engine pods.")
    postgres: PostgresSpec | None = Field(default=None, description="Shared PostgreSQL store.")
    redis: RedisSpec | None = Field(default=None, description="Shared Redis Cluster.")
    monitoring: MonitoringSpec | None = Field(default=None, description="Prometheus integration.")
    autopilot: AutopilotSpec | None = Field(
        default=None,
        description="Apply the advisor's right-sizing recommendations automatically, within bounds.",
    )

    @model_validator(mode="after")
    def _cluster_rules(self) -> BrainAIClusterSpec:
        scaling = self.autoscaling
        low, high = scaling.min_replicas, scaling.max_replicas
        if low is not None and high is not None and low > high:
            raise ValueError("spec.autoscaling.minReplicas must be less than or equal to maxReplicas")
        if self.engine.replicas is not None and self.autoscaling_enabled:
            raise ValueError("spec.engine.replicas must be unset while spec.autoscaling.enabled is true")
        if not self.shared_store:
            if scaling.enabled:
                raise ValueError(f"spec.autoscaling.enabled: true {NEEDS_SHARED_STORE}")
            if (self.engine.replicas or 0) > 1:
                raise ValueError(f"spec.engine.replicas above 1 {NEEDS_SHARED_STORE}")
        metrics = (self.engine.config or {}).get("metrics")
        scraped = bool(self.monitoring and self.monitoring.enabled)
        if scraped and isinstance(metrics, dict) and metrics.get("enabled") is False:
            raise ValueError(METRICS_OFF_BUT_SCRAPED)
        return self

    @property
    def shared_store(self) -> bool:
        """PostgreSQL (run by the operator or external) holds the memories every engine pod serves."""
        return bool(self.postgres and self.postgres.enabled)

    @property
    def autoscaling_enabled(self) -> bool:
        return self.shared_store if self.autoscaling.enabled is None else self.autoscaling.enabled


class Condition(KubeModel):
    type: str = Field(description="Ready, Progressing, Degraded, <Tier>Ready, or MetricsAvailable.")
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(description="CamelCase machine-readable cause.")
    message: str = Field(default="", description="Human-readable detail.")
    observed_generation: int | None = Field(default=None, description="Generation this was computed for.")
    last_transition_time: str | None = Field(default=None, description="When status last changed (RFC 3339).")


Phase = Literal["Pending", "Progressing", "Ready", "Degraded", "Paused"]


class RecommendedResources(KubeModel):
    requests: ResourceList = Field(description="Recommended requests per engine pod.")
    limits: ResourceList = Field(description="Recommended limits per engine pod.")


class Evidence(KubeModel):
    """The numbers a recommendation was computed from, over the window."""

    samples: int = Field(description="Time steps with data.")
    cpu_average_cores: float = Field(description="Average CPU per engine pod, in cores.")
    cpu_p95_cores: float = Field(description="95th percentile of CPU per engine pod.")
    cpu_peak_cores: float = Field(description="Highest CPU of any engine pod.")
    memory_p95_bytes: int = Field(description="95th percentile of memory per engine pod.")
    memory_peak_bytes: int = Field(description="Highest memory of any engine pod.")
    memory_growth_bytes_per_hour: int | None = Field(
        default=None, description="Trend of the largest pod's memory (least-squares slope)."
    )
    request_rate_average: float = Field(description="Average API requests per second, whole cluster.")
    request_rate_peak: float = Field(description="Highest API requests per second, whole cluster.")
    learn_share: float = Field(description="Fraction of API requests that learn (the rest query).")
    latency_p95_seconds: float | None = Field(default=None, description="95th percentile API latency.")
    replicas_average: float = Field(description="Engine pods reporting, on average.")
    replicas_peak: int = Field(description="Most engine pods reporting at once.")
    pod_capacity_rps: float | None = Field(
        default=None, description="Requests per second one pod serves at the HPA's CPU target."
    )


class AppliedSettings(KubeModel):
    """What autopilot currently sets over the resolved spec."""

    strategy: Strategy | None = None
    resources: RecommendedResources | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None


class AutopilotStatus(KubeModel):
    enabled: bool = Field(description="Whether autopilot is on (spec.autopilot.enabled).")
    applied: AppliedSettings | None = Field(default=None, description="Settings autopilot applies now.")
    last_change_time: str | None = Field(default=None, description="When autopilot last changed a setting.")
    change_times: list[str] | None = Field(
        default=None, description="Autopilot changes within the last hour (for maxChangesPerHour)."
    )
    message: str | None = Field(default=None, description="Why the latest recommendation was (not) applied.")


class Recommendations(KubeModel):
    """Right-sizing advice from the engine's Prometheus metrics (`brain-ai-operator recommend` prints it)."""

    generated_at: str = Field(description="When the advisor computed this (RFC 3339).")
    window: str = Field(description="History it covers, e.g. 1h.")
    strategy: Strategy = Field(description="Strategy the learn/query mix suggests.")
    resources: RecommendedResources = Field(description="Per-pod requests and limits.")
    min_replicas: int = Field(description="Recommended HPA minReplicas.")
    max_replicas: int = Field(description="Recommended HPA maxReplicas.")
    reasons: list[str] = Field(description="One sentence per recommendation, with its numbers.")
    evidence: Evidence = Field(description="Measurements behind the recommendation.")
    autopilot: AutopilotStatus | None = Field(default=None, description="What autopilot did with it.")


class BackupRecord(KubeModel):
    """One finished backup, as the Job that took it reported it."""

    job: str = Field(description="The Job that took it.")
    label: str | None = Field(default=None, description="pgBackRest's backup label.")
    started_at: str | None = Field(default=None, description="When the backup started (RFC 3339).")
    completed_at: str | None = Field(default=None, description="When it ended (RFC 3339).")
    size: int | None = Field(default=None, description="Database size backed up, in bytes.")
    repository_size: int | None = Field(default=None, description="Bytes it takes in the repository.")
    backups: int | None = Field(default=None, description="Full backups in the repository after it.")
    message: str | None = Field(default=None, description="Why it failed (failed backups only).")


class BackupStatus(KubeModel):
    last_backup: BackupRecord | None = Field(default=None, description="The newest backup that succeeded.")
    last_failure: BackupRecord | None = Field(default=None, description="The newest backup that failed.")
    last_request: str | None = Field(
        default=None, description="The last brainai.io/backup-request value a backup was started for."
    )


class RestoreStatus(KubeModel):
    from_cluster: str = Field(description="The cluster whose backups the database was restored from.")
    target_time: str | None = Field(default=None, description="The point in time recovered to, if one.")
    completed_at: str | None = Field(default=None, description="When the restored database took writes.")


class PostgresStatus(KubeModel):
    """The managed PostgreSQL cluster as its pods' Patroni roles show it."""

    primary: str | None = Field(default=None, description="The pod that is the leader (takes writes) now.")
    replicas: list[str] | None = Field(default=None, description="Ready pods running as streaming replicas.")
    last_primary_change: str | None = Field(
        default=None, description="When the leader last changed (failover or switchover, RFC 3339)."
    )
    former_primary: str | None = Field(
        default=None, description="The leader before this one (during a failover: the one lost)."
    )
    switchover: str | None = Field(
        default=None,
        description="The pod a switchover is handing the lead to: the one annotation "
        "brainai.io/postgres-primary names, or an updated replica while members roll.",
    )
    dynamic_config_hash: str | None = Field(
        default=None, description="Checksum of the Patroni dynamic configuration last written."
    )
    backup: BackupStatus | None = Field(default=None, description="The last backups taken.")
    restore: RestoreStatus | None = Field(default=None, description="Where the database was restored from.")


class BrainAIClusterStatus(KubeModel):
    phase: Phase | None = Field(default=None, description="Summary of the conditions.")
    observed_generation: int | None = Field(default=None, description="Last generation reconciled.")
    conditions: list[Condition] | None = Field(default=None, description="Current service state.")
    strategy: str | None = Field(default=None, description="Strategy in effect.")
    replicas: int | None = Field(default=None, description="Engine pods (desired by the Deployment).")
    ready_replicas: int | None = Field(default=None, description="Engine pods that are ready.")
    selector: str | None = Field(default=None, description="Label selector of engine pods (for /scale).")
    config_hash: str | None = Field(default=None, description="Checksum of the rendered engine config.")
    recommendations: Recommendations | None = Field(
        default=None, description="Right-sizing advice from Prometheus metrics, and what autopilot applied."
    )
    postgres: PostgresStatus | None = Field(default=None, description="The managed PostgreSQL's members.")


def describe_invalid_spec(exc: ValidationError) -> str:
    """The first problem of a spec in one line, naming its field (pydantic's own text spans several
    lines and links to its docs); for status messages, events and CLI errors."""
    errors = exc.errors()
    first = errors[0]
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    where = ".".join(str(p) for p in first.get("loc", ()))
    if not message.startswith("spec."):
        message = f"spec.{where}: {message}" if where else f"spec: {message}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return message + more


_SHARED = "(has(self.postgres) && has(self.postgres.enabled) && self.postgres.enabled)"
_SCALING_SET = "(has(self.autoscaling) && has(self.autoscaling.enabled))"

CLUSTER_RULES = [
    cel(
        "!has(self.autoscaling) || !has(self.autoscaling.minReplicas) || !has(self.autoscaling.maxReplicas)"
        " || self.autoscaling.minReplicas <= self.autoscaling.maxReplicas",
        "spec.autoscaling.minReplicas must be less than or equal to spec.autoscaling.maxReplicas",
        field_path=".autoscaling.minReplicas",
    ),
    cel(
        "!has(self.engine) || !has(self.engine.replicas) || "
        f"({_SCALING_SET} ? !self.autoscaling.enabled : !{_SHARED})",
        "spec.engine.replicas must be unset while spec.autoscaling.enabled is true (the default with "
        "spec.postgres.enabled): the HPA owns the replica count (set spec.autoscaling.enabled: false to "
        "scale by hand)",
        field_path=".engine.replicas",
    ),
    cel(
        f"{_SHARED} || !{_SCALING_SET} || !self.autoscaling.enabled",
        f"spec.autoscaling.enabled: true {NEEDS_SHARED_STORE}",
        field_path=".autoscaling.enabled",
    ),
    cel(
        f"{_SHARED} || !has(self.engine) || !has(self.engine.replicas) || self.engine.replicas <= 1",
        f"spec.engine.replicas above 1 {NEEDS_SHARED_STORE}",
        field_path=".engine.replicas",
    ),
    cel(
        "!has(self.monitoring) || !has(self.monitoring.enabled) || !self.monitoring.enabled || "
        "!has(self.engine) || !has(self.engine.config) || !has(self.engine.config.metrics) || "
        "!has(self.engine.config.metrics.enabled) || self.engine.config.metrics.enabled",
        METRICS_OFF_BUT_SCRAPED,
        field_path=".engine.config.metrics.enabled",
    ),
]
