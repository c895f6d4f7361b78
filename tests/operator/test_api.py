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
