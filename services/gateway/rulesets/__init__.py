"""Rule-set versions and what changed between them (SPEC §7)."""
