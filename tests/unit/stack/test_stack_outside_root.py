"""OUTSIDE_ROOT (/var/tmp/loan-engine) lives in a world-writable folder: the stack trusts it, and
each `<digest>` folder in it, only when it is a real folder of root's (or of the user running the
stack) that nobody else can write to. Otherwise another local user could make root write a cluster
into, or delete, a place they choose: `stack up`, `down --purge` and `sweep` refuse, with one
clear error, and delete nothing. A symlink is never followed.

The outside root is a temporary folder here (`OUTSIDE_ROOT` is patched), never /var/tmp. Another
user's folder is made with chown, as root (as CI runs).
"""

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.cli.stack import lifecycle, postgres
from services.cli.stack.errors import UnsafeFolder
from services.cli.stack.settings import StackSettings
from tests.unit.stack.test_stack_purge import can_run_as_server_user, outside_cluster

runner = CliRunner()

NOBODY = 65534
"""Another local user (Debian's `nobody`)."""

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
as_root_with_server_user = pytest.mark.skipif(
    not can_run_as_server_user(), reason="needs root and the postgres user"
)


@pytest.fixture
def outside_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "outside"
    monkeypatch.setattr(postgres, "OUTSIDE_ROOT", root)
    return root


def trusted(folder: Path) -> Path:
    folder.mkdir(mode=postgres.OUTSIDE_MODE, parents=True)
    folder.chmod(postgres.OUTSIDE_MODE)
    return folder


def give_away(path: Path) -> None:
    os.chown(path, NOBODY, NOBODY, follow_symlinks=False)


def everything_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


# --- purge (`stack down --purge`) ---------------------------------------------------------------


def root_through_a_symlink(tmp_path: Path, outside_root: Path) -> Path:
    """OUTSIDE_ROOT made a symlink to a folder elsewhere that holds this stack's cluster, linked
    from `<state>/postgres` by its path under OUTSIDE_ROOT; the folder elsewhere."""
    elsewhere = trusted(tmp_path / "elsewhere")
    outside_cluster(tmp_path / "state", elsewhere)
    outside_root.symlink_to(elsewhere, target_is_directory=True)
    home = tmp_path / "state" / "postgres"
    home.unlink()
    home.symlink_to(postgres.outside_home(home, outside_root), target_is_directory=True)
    return elsewhere


def test_purge_through_an_outside_root_that_is_a_symlink_is_refused_and_deletes_nothing(
    tmp_path: Path, outside_root: Path
) -> None:
    elsewhere = root_through_a_symlink(tmp_path, outside_root)
    before = everything_under(elsewhere)

    with pytest.raises(UnsafeFolder, match=f"{outside_root} is a symlink.*nothing was deleted"):
        postgres.purge(StackSettings(state_dir=tmp_path / "state"), lambda _: None)

    assert everything_under(elsewhere) == before
    assert (tmp_path / "state" / "postgres").is_symlink()


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757, 0o1777], ids=lambda mode: f"{mode:o}")
def test_purge_under_an_outside_root_others_can_write_to_is_refused(
    tmp_path: Path, outside_root: Path, mode: int
) -> None:
    trusted(outside_root)
    outside = outside_cluster(tmp_path / "state", outside_root)
    outside_root.chmod(mode)

    with pytest.raises(UnsafeFolder, match=f"{outside_root} can be written by other users"):
        postgres.purge(StackSettings(state_dir=tmp_path / "state"), lambda _: None)

    assert (outside / "data" / "PG_VERSION").exists()


@as_root
def test_purge_under_an_outside_root_of_another_user_is_refused(
    tmp_path: Path, outside_root: Path
) -> None:
    trusted(outside_root)
    outside = outside_cluster(tmp_path / "state", outside_root)
    give_away(outside_root)

    with pytest.raises(UnsafeFolder, match=f"{outside_root} belongs to .*uid {NOBODY}"):
        postgres.purge(StackSettings(state_dir=tmp_path / "state"), lambda _: None)

    assert (outside / "data" / "PG_VERSION").exists()


def test_purge_through_a_digest_folder_that_is_a_symlink_is_refused_and_deletes_nothing(
    tmp_path: Path, outside_root: Path
) -> None:
    trusted(outside_root)
    home = tmp_path / "state" / "postgres"
    digest = postgres.outside_home(home, outside_root).parent
    victim = trusted(tmp_path / "victim")
    (victim / "postgres" / "data").mkdir(parents=True)
    (victim / "precious").write_text("keep me")
    digest.symlink_to(victim, target_is_directory=True)
    home.parent.mkdir(parents=True)
    home.symlink_to(digest / "postgres", target_is_directory=True)

    with pytest.raises(UnsafeFolder, match=f"{digest} is a symlink"):
        postgres.purge(StackSettings(state_dir=tmp_path / "state"), lambda _: None)

    assert (victim / "precious").read_text() == "keep me" and digest.is_symlink()


@pytest.mark.parametrize("how", ["writable", "another user's"])
def test_purge_of_a_digest_folder_that_could_be_another_users_is_refused(
    tmp_path: Path, outside_root: Path, how: str
) -> None:
    if how == "another user's" and os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    trusted(outside_root)
    outside = outside_cluster(tmp_path / "state", outside_root)
    if how == "writable":
        outside.parent.chmod(0o777)
    else:
        give_away(outside.parent)

    with pytest.raises(UnsafeFolder, match=str(outside.parent)):
        postgres.purge(StackSettings(state_dir=tmp_path / "state"), lambda _: None)

    assert (outside / "data" / "PG_VERSION").exists()


def test_down_purge_under_an_unsafe_outside_root_fails_in_one_line_and_keeps_the_data(
    tmp_path: Path, outside_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted(outside_root)
    outside = outside_cluster(tmp_path / "state", outside_root)
    (tmp_path / "state" / "storage").mkdir()
    (tmp_path / "state" / "storage" / "tape.csv").write_text("x")
    outside_root.chmod(0o777)
    monkeypatch.setenv("STACK_STATE_DIR", str(tmp_path / "state"))

    result = runner.invoke(app, ["stack", "down", "--purge"])

    assert result.exit_code == 1
    assert "can be written by other users" in result.output and "Traceback" not in result.output
    assert (outside / "data" / "PG_VERSION").exists()
    assert (tmp_path / "state" / "storage" / "tape.csv").exists()


def test_purge_of_a_trusted_outside_cluster_still_deletes_it(
    tmp_path: Path, outside_root: Path
) -> None:
    trusted(outside_root)
    outside = outside_cluster(tmp_path / "state", outside_root)

    stopped, removed = lifecycle.purge(StackSettings(state_dir=tmp_path / "state"), lambda _: None)

    assert outside.parent in removed and list(outside_root.iterdir()) == []


# --- sweep (`stack sweep [--delete]`) ----------------------------------------------------------


def orphan_in(root: Path, tmp_path: Path, name: str = "gone") -> Path:
    """A cluster under `root` whose state folder was deleted: what a sweep deletes."""
    orphan = outside_cluster(tmp_path / name, root)
    (tmp_path / name / "postgres").unlink()
    return orphan


def test_a_sweep_of_an_outside_root_that_is_a_symlink_is_refused_and_deletes_nothing(
    tmp_path: Path, outside_root: Path
) -> None:
    elsewhere = trusted(tmp_path / "elsewhere")
    orphan = orphan_in(elsewhere, tmp_path)
    outside_root.symlink_to(elsewhere, target_is_directory=True)

    with pytest.raises(UnsafeFolder, match="is a symlink"):
        postgres.sweep_orphans(outside_root, lambda _: None)
    with pytest.raises(UnsafeFolder, match="is a symlink"):
        postgres.orphans(outside_root)

    assert (orphan / "data" / "PG_VERSION").exists()


@pytest.mark.parametrize("how", ["writable", "another user's"])
def test_a_sweep_of_an_outside_root_that_could_be_another_users_is_refused(
    tmp_path: Path, outside_root: Path, how: str
) -> None:
    if how == "another user's" and os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    trusted(outside_root)
    orphan = orphan_in(outside_root, tmp_path)
    if how == "writable":
        outside_root.chmod(0o777)
    else:
        give_away(outside_root)

    with pytest.raises(UnsafeFolder, match=str(outside_root)):
        postgres.sweep_orphans(outside_root, lambda _: None)

    assert (orphan / "data" / "PG_VERSION").exists()


@pytest.mark.parametrize("how", ["writable", "another user's"])
def test_a_sweep_with_a_digest_folder_that_could_be_another_users_deletes_nothing(
    tmp_path: Path, outside_root: Path, how: str
) -> None:
    if how == "another user's" and os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    trusted(outside_root)
    first = orphan_in(outside_root, tmp_path, "first")
    planted = orphan_in(outside_root, tmp_path, "planted")
    if how == "writable":
        planted.parent.chmod(0o777)
    else:
        give_away(planted.parent)

    with pytest.raises(UnsafeFolder, match=str(planted.parent)):
        postgres.sweep_orphans(outside_root, lambda _: None)

    assert (first / "data" / "PG_VERSION").exists() and (planted / "data").exists()


def test_a_sweep_never_follows_a_symlink_in_the_outside_root(
    tmp_path: Path, outside_root: Path
) -> None:
    trusted(outside_root)
    elsewhere = trusted(tmp_path / "elsewhere")
    target = orphan_in(elsewhere, tmp_path)  # looks orphaned, but is not under the root
    (outside_root / "planted").symlink_to(target.parent, target_is_directory=True)

    assert postgres.sweep_orphans(outside_root, lambda _: None) == []

    assert (target / "data" / "PG_VERSION").exists()


def test_stack_sweep_under_an_unsafe_outside_root_fails_in_one_line(
    tmp_path: Path, outside_root: Path
) -> None:
    trusted(outside_root)
    orphan = orphan_in(outside_root, tmp_path)
    outside_root.chmod(0o777)

    for arguments in (["stack", "sweep"], ["stack", "sweep", "--delete"]):
        result = runner.invoke(app, arguments)
        assert result.exit_code == 1, result.output
        assert "can be written by other users" in result.output
        assert "Traceback" not in result.output
    assert (orphan / "data" / "PG_VERSION").exists()


# --- making and starting a cluster (`stack up`) ------------------------------------------------


def test_starting_a_cluster_linked_into_an_unsafe_outside_root_is_refused(
    tmp_path: Path, outside_root: Path
) -> None:
    trusted(outside_root)
    outside_cluster(tmp_path / "state", outside_root)
    outside_root.chmod(0o777)

    with pytest.raises(UnsafeFolder, match="can be written by other users"):
        postgres.initialise(
            StackSettings(state_dir=tmp_path / "state"), tmp_path / "no-bin", lambda _: None
        )


def private_settings(tmp_path: Path) -> StackSettings:
    """A state folder whose parent the postgres user cannot enter: its cluster goes outside."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    return StackSettings(state_dir=private / "state")


@as_root_with_server_user
def test_a_new_cluster_makes_the_outside_root_and_its_folder_roots_alone(
    tmp_path: Path, outside_root: Path
) -> None:
    settings = private_settings(tmp_path)
    old_umask = os.umask(0o000)  # the modes are the stack's, not the umask's
    try:
        home = postgres._make_home(settings, lambda _: None)
    finally:
        os.umask(old_umask)

    assert home == postgres.outside_home(settings.state / "postgres", outside_root)
    for folder in (outside_root, home.parent):
        info = folder.lstat()
        assert stat.S_ISDIR(info.st_mode) and info.st_uid == 0
        assert stat.S_IMODE(info.st_mode) == postgres.OUTSIDE_MODE
    assert stat.S_IMODE(home.lstat().st_mode) == 0o700


@as_root_with_server_user
def test_a_new_cluster_in_an_outside_root_that_is_a_symlink_is_refused(
    tmp_path: Path, outside_root: Path
) -> None:
    elsewhere = trusted(tmp_path / "elsewhere")
    outside_root.symlink_to(elsewhere, target_is_directory=True)
    settings = private_settings(tmp_path)

    with pytest.raises(UnsafeFolder, match="is a symlink"):
        postgres._make_home(settings, lambda _: None)

    assert list(elsewhere.iterdir()) == []
    assert not os.path.lexists(settings.state / "postgres")


@as_root_with_server_user
@pytest.mark.parametrize("how", ["writable", "another user's"])
def test_a_new_cluster_in_an_outside_root_that_could_be_another_users_is_refused(
    tmp_path: Path, outside_root: Path, how: str
) -> None:
    trusted(outside_root)
    if how == "writable":
        outside_root.chmod(0o777)
    else:
        give_away(outside_root)
    settings = private_settings(tmp_path)

    with pytest.raises(UnsafeFolder, match=str(outside_root)):
        postgres._make_home(settings, lambda _: None)

    assert list(outside_root.iterdir()) == []


@as_root_with_server_user
@pytest.mark.parametrize("how", ["symlink", "writable", "another user's"])
def test_a_new_cluster_whose_digest_folder_was_made_by_someone_else_is_refused(
    tmp_path: Path, outside_root: Path, how: str
) -> None:
    trusted(outside_root)
    settings = private_settings(tmp_path)
    digest = postgres.outside_home(settings.state / "postgres", outside_root).parent
    chosen = trusted(tmp_path / "chosen")
    if how == "symlink":
        digest.symlink_to(chosen, target_is_directory=True)
    else:
        trusted(digest)
        if how == "writable":
            digest.chmod(0o777)
        else:
            give_away(digest)

    with pytest.raises(UnsafeFolder, match=str(digest)):
        postgres._make_home(settings, lambda _: None)

    assert list(chosen.iterdir()) == []
    assert os.path.lexists(digest)  # neither moved aside nor deleted
    assert [path.name for path in outside_root.iterdir()] == [digest.name]


@as_root_with_server_user
def test_handing_a_cluster_to_the_server_user_never_follows_a_symlink(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster"
    (cluster / "data").mkdir(parents=True)
    (cluster / "data" / "PG_VERSION").write_text("17\n")
    victim = tmp_path / "victim"
    victim.write_text("root's")
    (cluster / "data" / "planted").symlink_to(victim)

    postgres._own_for_server_user(cluster)

    server_uid = postgres._server_account().pw_uid
    assert (cluster / "data" / "PG_VERSION").stat().st_uid == server_uid
    assert victim.stat().st_uid == 0
