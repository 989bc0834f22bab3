"""Reprocess with corrections, a rule-set version and a loan filter; a child's diff (SPEC §7)."""
