"""Where the tests find their fixed inputs."""

from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
GOLDEN = PROJECT / "tests" / "golden"
"""The golden runs: a copy of shared/golden (sample tapes and their exact expected reports)."""
