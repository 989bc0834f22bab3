"""What the governance packages (corrections, lineage, reconciliation, dq, rulesets) share."""
