"""Reporting service: dispositions, run totals and the four reports (SPEC §3.6-3.8)."""
