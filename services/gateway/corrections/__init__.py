"""Record corrections (SPEC §7): recorded as events, listed per loan and per run."""
