"""The workbench's component tests (Vitest, in web/) as part of the test command."""

import shutil
import subprocess

import pytest

from tests.browser.web import WEB

pytestmark = pytest.mark.browser


def test_the_workbench_component_tests_pass() -> None:
    npm = shutil.which("npm")
    assert npm, "npm is missing: run scripts/bootstrap"
    done = subprocess.run(
        [npm, "test", "--silent"], cwd=WEB, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"vitest failed:\n{done.stdout[-8000:]}\n{done.stderr[-4000:]}"
