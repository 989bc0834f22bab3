"""Reconciliation of a run's source rows against its projected facts and reports (SPEC §7)."""
