"""Reconciling the ledger with Temporal: pending handoffs Temporal closed without
handshake-obs are closed with the reason seen."""

from ._budget import CallBudget
from ._probe import TemporalProbe, Verdict
from ._reconciler import Check, CheckResult, Reconciler
from ._schedule import CheckSchedule

__all__ = [
    "CallBudget",
    "Check",
    "CheckResult",
    "CheckSchedule",
    "Reconciler",
    "TemporalProbe",
    "Verdict",
]
