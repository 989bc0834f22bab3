"""Pricing service: IRR-target pricing (SPEC §3.5)."""
