"""Where a loan went (history) and where a run's records stand (stages), SPEC §7."""
