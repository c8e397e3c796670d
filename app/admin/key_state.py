"""An access key's state as people read it (pure): the stored ``status`` plus its dates."""

from __future__ import annotations

from datetime import UTC, datetime

from app.store.access_keys import AccessKeyDoc


def key_state(doc: AccessKeyDoc, now: datetime | None = None) -> str:
    """What the dashboard and API show for a key: ``revoked`` | ``rotated`` (replaced by a new key,
    its grace period over) | ``rotating`` (replaced, still accepted until ``expires_at``) |
    ``expired`` (an admin-set expiry passed) | ``active``."""
    now = now or datetime.now(UTC)
    status = doc.get("status")
    if status in ("revoked", "rotated"):
        return str(status)
    expires_at = doc.get("expires_at")
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    over = expires_at is not None and expires_at <= now
    if doc.get("rotated_at"):
        return "rotated" if over else "rotating"
    return "expired" if over else "active"
