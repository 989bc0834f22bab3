"""Scoring service: an explainable credit model's score, top factors and routing (SPEC §8)."""
