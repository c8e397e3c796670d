"""Quotas and rate limits: the old import path, kept for callers (see the modules it re-exports).

- app/usage/limits.py: which limits exist, ``merge_limits``/``effective_limits`` (validation);
- app/usage/ledger.py: ``PendingUsage`` (unwritten usage), ``Lease``, ``Reservation``;
- app/usage/estimate.py: a request's reservation (tokens and cost);
- app/usage/lease_book.py: this replica's leases on the shared counters (app/store/leases.py);
- app/usage/admission.py: ``QuotaAdmission``, the check.
"""

from app.usage.admission import QuotaAdmission
from app.usage.ledger import PendingUsage, Reservation
from app.usage.limits import LIMITS, MAX_LIMIT, LimitSpec, effective_limits, merge_limits

__all__ = ["LIMITS", "MAX_LIMIT", "LimitSpec", "PendingUsage", "QuotaAdmission", "Reservation",
           "effective_limits", "merge_limits"]
