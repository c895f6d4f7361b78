"""Kubernetes CPU and memory quantities: parsed to numbers for arithmetic, written back the way a
person would write them in a manifest (500m, 2, 768Mi, 8Gi)."""

from __future__ import annotations

import math

from kubernetes.utils.quantity import parse_quantity

GI = 1024**3
MI = 1024**2

QuantityValue = str | int | float  # what a manifest may hold: "500m", "1Gi", 2


def cores(quantity: QuantityValue | None) -> float | None:
    """CPU in cores; None stays None so an unset request can fall back to a default."""
    return None if quantity is None else float(parse_quantity(quantity))


def nbytes(quantity: QuantityValue | None) -> int | None:
    """Memory in bytes; None stays None so an unset request can fall back to a default."""
    return None if quantity is None else int(parse_quantity(quantity))


def cpu_quantity(value: float) -> str:
    """Whole cores where exact, else millicores."""
    millis = round(value * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def memory_quantity(value: float) -> str:
    """Gi where exact, else Mi rounded up: a limit written down must never be below the one computed."""
    size = int(value)
    if size % GI == 0:
        return f"{size // GI}Gi"
    return f"{math.ceil(size / MI)}Mi"


def human_cores(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") + (" core" if value == 1 else " cores")


def human_bytes(value: float) -> str:
    """GiB, MiB, or KiB below a MiB (so a slow memory trend does not read as 0MiB)."""
    size = abs(value)
    if size >= GI:
        return f"{value / GI:.1f}GiB"
    return f"{value / MI:.0f}MiB" if size >= MI else f"{value / 1024:.0f}KiB"
