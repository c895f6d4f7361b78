"""What the operator says about a spec it cannot use (one stored before a rule existed, or a file)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from brainai_operator.api import BrainAIClusterSpec, describe_invalid_spec


def describe(spec: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as exc:
        BrainAIClusterSpec.model_validate(spec)
    return describe_invalid_spec(exc.value)


def test_a_field_error_names_the_field_in_one_line() -> None:
    text = describe({"engine": {"replicas": -1}})
    assert text == "spec.engine.replicas: Input should be greater than or equal to 0"


def test_a_cluster_rule_is_its_own_message() -> None:
    # What the CRD's old default (autoscaling.enabled: true) left on clusters without PostgreSQL.
    text = describe({"autoscaling": {"enabled": True, "preset": "standard"}})
    assert text.startswith("spec.autoscaling.enabled: true needs spec.postgres.enabled: true")
    assert "\n" not in text and "pydantic" not in text


def test_more_problems_are_counted() -> None:
    assert describe({"engine": {"replicas": -1, "port": 80}}).endswith("(and 1 more)")


S3 = {"bucket": "backups", "endpoint": "minio.storage:9000", "credentials": "s3-creds"}
EXTERNAL = {"secretRef": {"name": "db", "key": "url"}}


def postgres(**fields: Any) -> dict[str, Any]:
    return {"postgres": {"enabled": True, **fields}}


def valid(spec: dict[str, Any]) -> BrainAIClusterSpec:
    return BrainAIClusterSpec.model_validate(spec)


def test_a_backup_has_one_repository() -> None:
    text = describe(postgres(backup={"volume": {"size": "10Gi"}, "s3": S3}))
    assert text == "spec.postgres.backup: set volume or s3, not both"
    for one in ({"volume": {"size": "10Gi"}}, {"s3": S3}, {}):
        backup = valid(postgres(backup=one)).postgres
        assert backup is not None and backup.backup is not None


@pytest.mark.parametrize(
    "schedule", ["99 * * * *", "* 24 * * *", "0 0 0 * *", "0 2 * * 7", "@fortnightly", "* * * *"]
)
def test_a_schedule_out_of_range_is_refused(schedule: str) -> None:
    assert describe(postgres(backup={"schedule": schedule})).startswith("spec.postgres.backup.schedule:")


@pytest.mark.parametrize("schedule", ["5-2 * * * *", "0 2 * dec-jan *", "0 2 * * fri-mon"])
def test_a_schedule_range_must_not_run_backwards(schedule: str) -> None:
    text = describe(postgres(backup={"schedule": schedule}))
    assert text.startswith("spec.postgres.backup.schedule: range ") and "runs backwards" in text


@pytest.mark.parametrize(
    "schedule",
    ["@daily", "*/15 1-5 * jan-mar mon-fri", "0 2 * * *", "0,30 1-3/2 1-31 1-12 0-6", "0 2 * * SUN"],
)
def test_a_schedule_the_cronjob_takes_is_accepted(schedule: str) -> None:
    pg = valid(postgres(backup={"schedule": schedule})).postgres
    assert pg is not None and pg.backup is not None and pg.backup.schedule == schedule


def test_at_least_one_full_backup_is_kept() -> None:
    assert describe(postgres(backup={"retention": 0})).startswith("spec.postgres.backup.retention:")
    pg = valid(postgres(backup={"retention": 1})).postgres
    assert pg is not None and pg.backup is not None and pg.backup.retention == 1


@pytest.mark.parametrize("moment", ["2026-13-45T99:99:99Z", "2026-02-31T10:00:00Z", "2026-12-04 10:00:00Z"])
def test_a_target_time_must_be_a_real_moment(moment: str) -> None:
    text = describe(postgres(restore={"fromCluster": "old", "targetTime": moment}))
    assert text.startswith("spec.postgres.restore.targetTime:")


@pytest.mark.parametrize("moment", ["2026-12-04T10:00:00Z", "2026-12-04T10:00:00.25+02:00"])
def test_a_target_time_in_rfc3339_is_accepted(moment: str) -> None:
    pg = valid(postgres(restore={"fromCluster": "old", "targetTime": moment})).postgres
    assert pg is not None and pg.restore is not None and pg.restore.target_time == moment


@pytest.mark.parametrize("field", [{"backup": {}}, {"restore": {"fromCluster": "old"}}])
def test_backup_and_restore_do_not_apply_to_an_external_database(field: dict[str, Any]) -> None:
    text = describe(postgres(external=EXTERNAL, **field))
    assert text == "spec.postgres.backup and spec.postgres.restore do not apply to an external database"
    assert valid(postgres(**field)).postgres is not None  # each is fine on a database of its own
