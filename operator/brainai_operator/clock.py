"""UTC time as the Kubernetes API writes it, in one place so every timestamp the operator emits agrees.

Status fields, events and autopilot's change log use RFC 3339 in whole seconds (`metav1.Time`);
Leases use microseconds (`metav1.MicroTime`), so a renewal every few seconds still moves the field.
"""

from __future__ import annotations

import datetime as dt

SECONDS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MICROSECONDS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utcnow() -> dt.datetime:
    """Aware, so differences with parsed timestamps never mix naive and aware times."""
    return dt.datetime.now(dt.UTC)


def rfc3339(when: dt.datetime) -> str:
    """Whole seconds, as status and events carry them."""
    return when.astimezone(dt.UTC).strftime(SECONDS_FORMAT)


def parse_rfc3339(text: str) -> dt.datetime:
    """The inverse of `rfc3339`; raises ValueError for any other shape."""
    return dt.datetime.strptime(text, SECONDS_FORMAT).replace(tzinfo=dt.UTC)


def rfc3339_micro(when: dt.datetime) -> str:
    """Microseconds, as a Lease's acquireTime and renewTime carry them."""
    return when.astimezone(dt.UTC).strftime(MICROSECONDS_FORMAT)


def parse_rfc3339_micro(text: str) -> dt.datetime:
    """A MicroTime written by any client: `Z` or a numeric offset; raises ValueError without microseconds."""
    return dt.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
