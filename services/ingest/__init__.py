"""Ingest service: tapes (files or a producer's rows) to normalised loans (SPEC §3.1)."""
