"""CPU and memory quantities: parsed for arithmetic, written back as a manifest would."""

from __future__ import annotations

import pytest

from brainai_operator.quantities import (
    GI,
    MI,
    cores,
    cpu_quantity,
    human_bytes,
    human_cores,
    memory_quantity,
    nbytes,
)


def test_cpu_parses_cores_and_millicores() -> None:
    assert cores("500m") == pytest.approx(0.5)
    assert cores("2") == 2.0 and cores(2) == 2.0 and cores(1.5) == 1.5
    assert cores(None) is None


def test_memory_parses_binary_and_decimal_suffixes() -> None:
    assert nbytes("1Gi") == GI and nbytes("512Mi") == 512 * MI
    assert nbytes("1G") == 10**9 and nbytes(1024) == 1024
    assert nbytes(None) is None


def test_cpu_is_written_in_whole_cores_or_millicores() -> None:
    assert cpu_quantity(2.0) == "2" and cpu_quantity(0.25) == "250m" and cpu_quantity(1.5) == "1500m"
    assert cpu_quantity(0.1004) == "100m"  # below a millicore is noise


def test_memory_is_written_in_gi_or_rounded_up_mi() -> None:
    assert memory_quantity(8 * GI) == "8Gi"
    assert memory_quantity(768 * MI) == "768Mi"
    assert memory_quantity(768 * MI + 1) == "769Mi"  # never below what was computed


@pytest.mark.parametrize("text", ["250m", "1", "3500m", "128Mi", "2Gi", "1536Mi"])
def test_written_quantities_parse_back_to_the_same_value(text: str) -> None:
    if text.endswith("i"):
        assert memory_quantity(nbytes(text) or 0) == text
    else:
        assert cpu_quantity(cores(text) or 0) == text


def test_human_forms_for_reasons() -> None:
    assert human_cores(1) == "1 core" and human_cores(0.5) == "0.5 cores"
    assert human_cores(2.25) == "2.25 cores"
    assert human_bytes(3 * GI) == "3.0GiB" and human_bytes(600 * MI) == "600MiB"
    assert human_bytes(300 * 1024) == "300KiB"
