"""Rules service: validation, eligibility and data quality (SPEC §3.2-3.4)."""
