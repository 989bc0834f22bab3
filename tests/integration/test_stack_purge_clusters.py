"""A stack's PostgreSQL cluster never outlives its state folder.

As root, a state folder with a parent private to the `postgres` user (pytest's own temporary
folders are 0700) keeps its cluster under `postgres.OUTSIDE_ROOT` (/var/tmp/loan-engine): these
tests make real clusters there with `initdb`, on free ports, and check that `stack down --purge`
and the sweep of orphans leave none behind. The shared development PostgreSQL is never touched.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.stack import lifecycle, postgres, state
from services.cli.stack.settings import StackSettings
from tests.net import free_port

pytestmark = pytest.mark.integration

OUTSIDE = os.geteuid() == 0
"""Whether clusters of private state folders live outside them (only root runs the server as
another user)."""


def private_stack(folder: Path) -> StackSettings:
    """Settings of a stack whose state folder has a parent only its owner may enter."""
    folder.mkdir(mode=0o700)
    return StackSettings(state_dir=folder / "state", postgres_port=free_port(), database_url=None)


def start_database(settings: StackSettings) -> Path:
    """Start the stack's PostgreSQL as `stack up` does (recorded, so `down` stops it); the
    folder the cluster really lives in."""
    with lifecycle.locked(settings):
        recorded = state.load(settings.state)
        lifecycle.ensure_database(settings, recorded, lambda _message: None)
    return postgres.cluster_dir(settings)


def stack_cli(settings: StackSettings, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "TOPIC_PREFIX")
    }
    environment.update(
        STACK_STATE_DIR=str(settings.state), STACK_POSTGRES_PORT=str(settings.postgres_port)
    )
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", "stack", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.timeout(180)
def test_a_purged_stack_leaves_no_postgresql_cluster_behind(tmp_path: Path) -> None:
    settings = private_stack(tmp_path / "private")
    cluster = start_database(settings)
    try:
        assert (cluster / "data" / "PG_VERSION").exists()
        if OUTSIDE:
            assert cluster.parent.parent == postgres.OUTSIDE_ROOT
            assert postgres.owner(cluster.parent) == settings.state / "postgres"
        kept = stack_cli(settings, "down")
        assert kept.returncode == 0, kept.stderr
        assert (cluster / "data" / "PG_VERSION").exists()  # `down` alone keeps the data
        start_database(settings)
        purged = stack_cli(settings, "down", "--purge")
        assert purged.returncode == 0, purged.stderr
        assert "stopped: postgres" in purged.stderr
        assert not cluster.exists() and not cluster.parent.exists()
        assert not settings.state.exists()
    finally:
        postgres.stop(settings)
        postgres.purge(settings, lambda _message: None)


@pytest.mark.timeout(240)
def test_stack_sweep_lists_the_cluster_of_a_deleted_state_folder_and_making_one_sweeps_none(
    tmp_path: Path,
) -> None:
    gone = private_stack(tmp_path / "gone")
    orphan = start_database(gone)
    postgres.stop(gone)
    shutil.rmtree(gone.state)  # what pytest does to its old temporary folders
    assert (orphan / "data" / "PG_VERSION").exists()
    settings = private_stack(tmp_path / "next")
    try:
        start_database(settings)
        assert orphan.exists()  # making a cluster sweeps nothing by itself
        if OUTSIDE:
            # Listed, not deleted: `--delete` would remove other stacks' orphans on this machine
            # too (the unit tests delete them under a root of their own).
            listed = stack_cli(settings, "sweep")
            assert listed.returncode == 0, listed.stderr
            assert str(orphan.parent) in listed.stdout
        assert (postgres.cluster_dir(settings) / "data" / "PG_VERSION").exists()
    finally:
        postgres.stop(settings)
        postgres.purge(settings, lambda _message: None)
        shutil.rmtree(orphan.parent, ignore_errors=True)  # the orphan this test made
