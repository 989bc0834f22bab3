"""Where the workbench lives."""

from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
WEB = PROJECT / "web"
ARTEFACTS = WEB / "test-artifacts"
