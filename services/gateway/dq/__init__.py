"""Data quality per run, per field and over time (SPEC §7)."""
