"""Loopback helpers for tests that start real processes (the stack's own, where it has them)."""

import subprocess

from services.cli.stack.ports import free_port
from services.cli.stack.services import answers as answers_within

__all__ = ["answers", "free_port", "stop"]


def answers(url: str) -> bool:
    """Whether GET `url` answers 2xx within two seconds."""
    return answers_within(url, timeout=2.0)


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Terminate a process started by a test; kill it when it does not stop in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
