"""Deleting a stack's data for good, and clusters under OUTSIDE_ROOT whose stack is gone.

The outside root is a temporary folder here (`OUTSIDE_ROOT` is patched), never /var/tmp.
"""

import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.cli.stack import commands, lifecycle, postgres, supervisor
from services.cli.stack.errors import StackError, StartFailed
from services.cli.stack.settings import StackSettings

runner = CliRunner()


@pytest.fixture
def outside_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "outside"
    root.mkdir(mode=postgres.OUTSIDE_MODE)
    root.chmod(postgres.OUTSIDE_MODE)  # whatever the umask: the stack refuses a writable one
    monkeypatch.setattr(postgres, "OUTSIDE_ROOT", root)
    return root


@pytest.fixture
def fake_postmaster() -> Iterator[int]:
    """A live process whose command line names postgres, as a running server's does."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "postgres", "-D", "data"]
    )
    try:
        command = Path(f"/proc/{process.pid}/cmdline")
        assert supervisor.wait_until(lambda: b"postgres" in command.read_bytes(), timeout=10)
        yield process.pid
    finally:
        process.kill()
        process.wait()


def outside_cluster(state: Path, root: Path, *, marked: bool = True) -> Path:
    """A cluster kept under `root` for the stack of `state`, linked from `<state>/postgres`."""
    home = state / "postgres"
    outside = postgres.outside_home(home, root)
    (outside / "data" / "pg_wal").mkdir(parents=True)
    outside.parent.chmod(postgres.OUTSIDE_MODE)
    (outside / "data" / "PG_VERSION").write_text("17\n")
    (outside / "postgres.log").write_text("log\n")
    state.mkdir(parents=True, exist_ok=True)
    home.symlink_to(outside, target_is_directory=True)
    if marked:
        postgres.claim(outside, home)
    return outside


def running(cluster: Path, pid: int) -> None:
    (cluster / "data" / "postmaster.pid").write_text(f"{pid}\n/some/data\n")


def test_the_marker_names_the_state_folders_link_to_the_cluster(
    tmp_path: Path, outside_root: Path
) -> None:
    outside = outside_cluster(tmp_path / "state", outside_root)
    assert outside.parent.parent == outside_root
    assert postgres.owner(outside.parent) == tmp_path / "state" / "postgres"
    assert not postgres.orphaned(outside.parent)
    assert {p.name for p in outside.parent.iterdir()} == {"owner", "postgres"}


def test_a_cluster_whose_state_folder_was_deleted_is_swept_and_said_so(
    tmp_path: Path, outside_root: Path
) -> None:
    gone = outside_cluster(tmp_path / "gone", outside_root)
    kept = outside_cluster(tmp_path / "kept", outside_root)
    (tmp_path / "gone" / "postgres").unlink()
    (tmp_path / "gone").rmdir()
    said: list[str] = []
    assert postgres.sweep_orphans(outside_root, said.append) == [gone.parent]
    assert not gone.parent.exists()
    assert (kept / "data" / "PG_VERSION").exists()
    assert len(said) == 1 and str(gone.parent) in said[0] and str(tmp_path / "gone") in said[0]


def test_a_cluster_whose_link_now_points_elsewhere_or_is_a_folder_is_orphaned(
    tmp_path: Path, outside_root: Path
) -> None:
    relinked = outside_cluster(tmp_path / "relinked", outside_root)
    (tmp_path / "relinked" / "postgres").unlink()
    (tmp_path / "relinked" / "postgres").symlink_to(tmp_path, target_is_directory=True)
    replaced = outside_cluster(tmp_path / "replaced", outside_root)
    (tmp_path / "replaced" / "postgres").unlink()
    (tmp_path / "replaced" / "postgres").mkdir()
    removed = postgres.sweep_orphans(outside_root, lambda _: None)
    assert sorted(removed) == sorted([relinked.parent, replaced.parent])
    assert list(outside_root.iterdir()) == []
    assert (tmp_path / "replaced" / "postgres").is_dir()  # the state folder is not touched


def test_a_folder_without_a_marker_is_never_swept(tmp_path: Path, outside_root: Path) -> None:
    unmarked = outside_cluster(tmp_path / "old", outside_root, marked=False)
    (tmp_path / "old" / "postgres").unlink()
    stray = outside_root / "notes.txt"
    stray.write_text("not a cluster")
    assert postgres.sweep_orphans(outside_root, lambda _: None) == []
    assert (unmarked / "data" / "PG_VERSION").exists() and stray.exists()


def test_an_orphan_whose_server_still_runs_is_left_and_said_so(
    tmp_path: Path, outside_root: Path, fake_postmaster: int
) -> None:
    orphan = outside_cluster(tmp_path / "gone", outside_root)
    (tmp_path / "gone" / "postgres").unlink()
    running(orphan, fake_postmaster)
    said: list[str] = []
    assert postgres.sweep_orphans(outside_root, said.append) == []
    assert (orphan / "data" / "PG_VERSION").exists()
    assert "runs" in said[0] and str(fake_postmaster) in said[0]


def test_a_stale_postmaster_pid_of_another_program_does_not_keep_an_orphan(
    tmp_path: Path, outside_root: Path
) -> None:
    orphan = outside_cluster(tmp_path / "gone", outside_root)
    (tmp_path / "gone" / "postgres").unlink()
    running(orphan, os.getpid())  # alive, but not a PostgreSQL server
    assert postgres.running_postmaster(orphan) is None
    assert postgres.sweep_orphans(outside_root, lambda _: None) == [orphan.parent]


def test_a_missing_outside_root_sweeps_nothing(tmp_path: Path) -> None:
    assert postgres.sweep_orphans(tmp_path / "absent", lambda _: None) == []


def test_purge_deletes_the_link_the_outside_cluster_and_its_folder(
    tmp_path: Path, outside_root: Path
) -> None:
    neighbour = outside_cluster(tmp_path / "neighbour", outside_root)
    outside = outside_cluster(tmp_path / "state", outside_root)
    settings = StackSettings(state_dir=tmp_path / "state")
    removed = postgres.purge(settings, lambda _: None)
    assert removed == [outside.parent, tmp_path / "state" / "postgres"]
    assert not outside.parent.exists()
    assert not (tmp_path / "state" / "postgres").is_symlink()
    assert list(outside_root.iterdir()) == [neighbour.parent]


def test_purge_of_an_unmarked_cluster_of_this_stack_deletes_it(
    tmp_path: Path, outside_root: Path
) -> None:
    outside = outside_cluster(tmp_path / "state", outside_root, marked=False)
    postgres.purge(StackSettings(state_dir=tmp_path / "state"), lambda _: None)
    assert not outside.parent.exists()


def test_purge_is_refused_while_the_server_runs_and_deletes_nothing(
    tmp_path: Path, outside_root: Path, fake_postmaster: int
) -> None:
    outside = outside_cluster(tmp_path / "state", outside_root)
    running(outside, fake_postmaster)
    with pytest.raises(StackError, match=f"pid {fake_postmaster}.*stop it first"):
        postgres.purge(StackSettings(state_dir=tmp_path / "state"), lambda _: None)
    assert (outside / "data" / "PG_VERSION").exists()
    assert (tmp_path / "state" / "postgres").is_symlink()


@pytest.mark.usefixtures("outside_root")
def test_purge_of_a_link_the_stack_did_not_make_leaves_its_target(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "postgres").symlink_to(elsewhere, target_is_directory=True)
    said: list[str] = []
    postgres.purge(StackSettings(state_dir=tmp_path / "state"), said.append)
    assert (elsewhere / "data").is_dir()
    assert not (tmp_path / "state" / "postgres").is_symlink()
    assert "did not make" in said[0]


def test_purge_deletes_a_cluster_inside_the_state_folder(tmp_path: Path) -> None:
    (tmp_path / "postgres" / "data").mkdir(parents=True)
    removed = postgres.purge(StackSettings(state_dir=tmp_path), lambda _: None)
    assert removed == [tmp_path / "postgres"] and not (tmp_path / "postgres").exists()
    assert postgres.purge(StackSettings(state_dir=tmp_path), lambda _: None) == []


def stack_folder(state: Path, root: Path) -> StackSettings:
    """A stopped stack's folder as `up` and `down` leave it."""
    settings = StackSettings(state_dir=state)
    outside_cluster(state, root)
    for folder in ("kafka/data", "logs", "storage/tapes", "state/ingest", "crashes"):
        (state / folder).mkdir(parents=True)
        (state / folder / "file").write_text("x")
    for name in ("env", "secrets.env", "supervisord.conf", "supervisord.out", "lock"):
        (state / name).write_text("x")
    (state / "state.json").write_text('{"processes": {}, "postgres_private": false}')
    return settings


def test_purging_a_stack_deletes_its_folder_and_its_outside_cluster(
    tmp_path: Path, outside_root: Path
) -> None:
    settings = stack_folder(tmp_path / "state", outside_root)
    stopped, removed = lifecycle.purge(settings, lambda _: None)
    assert stopped == []
    assert not (tmp_path / "state").exists()
    assert list(outside_root.iterdir()) == []
    assert tmp_path / "state" in removed


def test_purging_a_stack_leaves_files_it_did_not_write_and_names_them(
    tmp_path: Path, outside_root: Path
) -> None:
    settings = stack_folder(tmp_path / "state", outside_root)
    (tmp_path / "state" / "Procfile").write_text("web: python -m http.server\n")
    said: list[str] = []
    lifecycle.purge(settings, said.append)
    # The lock file stays with the folder: nothing else may take it while files are left.
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["Procfile", "lock"]
    assert "Procfile" in said[-1]
    assert list(outside_root.iterdir()) == []


def test_down_keeps_the_data_and_down_purge_deletes_it(
    tmp_path: Path, outside_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_folder(tmp_path / "state", outside_root)
    monkeypatch.setenv("STACK_STATE_DIR", str(tmp_path / "state"))
    kept = runner.invoke(app, ["stack", "down"])
    assert kept.exit_code == 0, kept.output
    assert (tmp_path / "state" / "postgres" / "data" / "PG_VERSION").exists()
    purged = runner.invoke(app, ["stack", "down", "--purge"])
    assert purged.exit_code == 0, purged.output
    assert "deleted:" in purged.output
    assert not (tmp_path / "state").exists() and list(outside_root.iterdir()) == []


def test_down_purge_while_the_cluster_runs_fails_and_keeps_the_data(
    tmp_path: Path, outside_root: Path, monkeypatch: pytest.MonkeyPatch, fake_postmaster: int
) -> None:
    stack_folder(tmp_path / "state", outside_root)
    running(postgres.cluster_dir(StackSettings(state_dir=tmp_path / "state")), fake_postmaster)
    monkeypatch.setenv("STACK_STATE_DIR", str(tmp_path / "state"))
    result = runner.invoke(app, ["stack", "down", "--purge"])
    assert result.exit_code == 1
    assert "stop it first" in result.output
    assert (tmp_path / "state" / "postgres" / "data" / "PG_VERSION").exists()
    assert (tmp_path / "state" / "storage" / "tapes" / "file").exists()


def can_run_as_server_user() -> bool:
    try:
        pwd.getpwnam(postgres.SERVER_USER)
    except KeyError:
        return False
    return os.geteuid() == 0


@pytest.mark.skipif(not can_run_as_server_user(), reason="needs root and the postgres user")
def test_a_cluster_made_outside_a_private_parent_is_marked_and_deletes_no_other(
    tmp_path: Path, outside_root: Path
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    orphan = outside_cluster(tmp_path / "gone", outside_root)
    (tmp_path / "gone" / "postgres").unlink()
    settings = StackSettings(state_dir=private / "state")
    said: list[str] = []
    home = postgres._make_home(settings, said.append)
    assert home == postgres.outside_home(private / "state" / "postgres", outside_root)
    assert postgres.owner(home.parent) == private / "state" / "postgres"
    assert (private / "state" / "postgres").resolve() == home
    # Looks orphaned, but a checkout moved since its cluster was made looks the same: kept.
    assert postgres.orphaned(orphan.parent) and (orphan / "data" / "PG_VERSION").exists()
    assert not any("orphaned" in message for message in said)


@pytest.mark.skipif(not can_run_as_server_user(), reason="needs root and the postgres user")
@pytest.mark.parametrize("marked", [True, False])
def test_a_state_folder_made_again_at_the_same_path_gets_a_fresh_cluster(
    tmp_path: Path, outside_root: Path, marked: bool
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    earlier = outside_cluster(private / "state", outside_root, marked=marked)
    (private / "state" / "postgres").unlink()  # `rm -rf .stack`
    said: list[str] = []
    home = postgres._make_home(StackSettings(state_dir=private / "state"), said.append)
    assert home == earlier and list(home.iterdir()) == []
    assert postgres.owner(home.parent) == private / "state" / "postgres"
    prefix = f"{home.parent.name}.earlier"
    [aside] = [f for f in outside_root.iterdir() if f.name.startswith(prefix)]
    assert (aside / "postgres" / "data" / "PG_VERSION").read_text() == "17\n"  # moved, not lost
    assert any(str(aside) in message for message in said)


@pytest.mark.skipif(not can_run_as_server_user(), reason="needs root and the postgres user")
def test_an_earlier_cluster_at_the_same_path_that_still_runs_stops_the_start(
    tmp_path: Path, outside_root: Path, fake_postmaster: int
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    earlier = outside_cluster(private / "state", outside_root)
    running(earlier, fake_postmaster)
    (private / "state" / "postgres").unlink()
    with pytest.raises(StartFailed, match=f"still runs .*kill {fake_postmaster}"):
        postgres._make_home(StackSettings(state_dir=private / "state"), lambda _: None)
    assert (earlier / "data" / "PG_VERSION").exists()


@pytest.mark.usefixtures("outside_root")
def test_a_link_to_a_cluster_that_is_gone_is_replaced_by_a_new_cluster(tmp_path: Path) -> None:
    (tmp_path / "postgres").symlink_to(tmp_path / "gone", target_is_directory=True)
    said: list[str] = []
    home = postgres._make_home(StackSettings(state_dir=tmp_path), said.append)
    assert home.is_dir() and "is gone" in said[0]


def test_purging_a_stack_that_never_ran_deletes_nothing(tmp_path: Path) -> None:
    settings = StackSettings(state_dir=tmp_path / "never")
    assert lifecycle.purge(settings, lambda _: None) == ([], [])
    assert not (tmp_path / "never").exists()


def test_stack_sweep_lists_the_clusters_no_stack_links_to_and_deletes_them_only_when_asked(
    tmp_path: Path, outside_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = outside_cluster(tmp_path / "kept", outside_root)
    gone = outside_cluster(tmp_path / "gone", outside_root)
    (tmp_path / "gone" / "postgres").unlink()
    commands.sweep(delete=False)
    listed = capsys.readouterr().out
    assert str(gone.parent) in listed and str(kept.parent) not in listed
    assert gone.exists()
    commands.sweep(delete=True)
    assert not gone.parent.exists() and kept.exists()
