"""The stack's PostgreSQL: a private cluster under `.stack/postgres/`, or `DATABASE_URL`."""

import asyncio
import contextlib
import hashlib
import os
import pwd
import re
import shutil
import stat
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from services.cli.stack import databases, ports
from services.cli.stack.errors import MissingTool, StackError, StartFailed, UnsafeFolder
from services.cli.stack.settings import StackSettings
from services.cli.stack.urls import local_url

Progress = Callable[[str], None]

DEBIAN_ROOT = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"
"""The OS user that owns the cluster when the stack runs as root (PostgreSQL refuses root)."""

OUTSIDE_ROOT = Path("/var/tmp/loan-engine")
"""Where a cluster lives when a parent of the stack's state folder is private to SERVER_USER:
`<OUTSIDE_ROOT>/<digest>/postgres`, with `<state>/postgres` a symlink to it."""

OUTSIDE_MODE = 0o755
"""The mode of OUTSIDE_ROOT and of each `<digest>` folder: the server user passes through them,
and nobody but their owner (root) adds, renames or removes an entry in them."""

OWNER_FILE = "owner"
"""The marker in `<OUTSIDE_ROOT>/<digest>/` naming the symlink (`<state>/postgres`) of its stack."""

CLUSTER_CONFIG = """
# Written by `loan-engine stack up`: a private development cluster.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
# Development data: a crash may lose the last commits, never corrupt the cluster.
synchronous_commit = off
# A million-loan run writes ~5 GB of WAL: with the defaults (1 GB, 128 MB of buffers) it
# checkpointed every ~10 s, each checkpoint making the next writes of every page whole-page WAL,
# and requests waited behind the writes.
shared_buffers = 512MB
max_wal_size = 4GB
checkpoint_timeout = 15min
"""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def find_bin_dir(candidates: Sequence[Path]) -> Path | None:
    """The newest `.../<version>/bin` among `candidates` that holds initdb and pg_ctl."""
    usable = [
        path for path in candidates if (path / "initdb").is_file() and (path / "pg_ctl").is_file()
    ]
    return max(usable, key=_version_key) if usable else None


def bin_dir(settings: StackSettings, progress: Progress) -> Path:
    """PostgreSQL's server binaries, installed with apt when missing and running as root."""
    if settings.postgres_bin_dir is not None:
        return settings.postgres_bin_dir
    found = find_bin_dir(sorted(DEBIAN_ROOT.glob("*/bin")))
    if found is not None:
        return found
    if os.geteuid() != 0:
        raise MissingTool(
            "PostgreSQL server binaries were not found under /usr/lib/postgresql; install them "
            "with `sudo apt-get install -y postgresql` (or set DATABASE_URL to a server you have, "
            "or STACK_POSTGRES_BIN_DIR to the folder holding initdb and pg_ctl)"
        )
    progress("installing PostgreSQL with apt-get (first run only)")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
        result = subprocess.run(
            command, capture_output=True, text=True, env=environment, check=False
        )
        if result.returncode != 0:
            raise MissingTool(f"`{' '.join(command)}` failed:\n{result.stderr[-2000:]}")
    found = find_bin_dir(sorted(DEBIAN_ROOT.glob("*/bin")))
    if found is None:
        raise MissingTool("apt-get installed postgresql but no initdb was found")
    return found


def cluster_dir(settings: StackSettings) -> Path:
    """The private cluster's folder (data and log), symlinks resolved for the server user."""
    return (settings.state / "postgres").resolve()


def server_url(settings: StackSettings) -> str:
    """The private cluster's maintenance database URL."""
    return local_url(settings.postgres_port, "postgres")


def database_url(settings: StackSettings) -> str:
    """The URL the services use: DATABASE_URL when given, else the private cluster's database."""
    if settings.database_url:
        return settings.database_url
    return local_url(settings.postgres_port, settings.postgres_database)


def _as_server_user(argv: Sequence[str]) -> list[str]:
    # As root, run server tools as the `postgres` user: initdb and postgres refuse root.
    if os.geteuid() != 0:
        return list(argv)
    return ["runuser", "-u", SERVER_USER, "--", *argv]


def _run(argv: Sequence[str], what: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(_as_server_user(argv), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StartFailed(f"{what} failed:\n{(result.stdout + result.stderr)[-2000:]}")
    return result


def blocking_folder(path: Path, uid: int, gids: set[int]) -> Path | None:
    """The first existing folder from `/` down to `path` that the user cannot traverse."""
    for folder in [*reversed(path.parents), path]:
        try:
            info = folder.stat()
        except FileNotFoundError:
            return None
        if uid == 0:
            continue
        if info.st_uid == uid:
            allowed = info.st_mode & 0o100
        elif info.st_gid in gids:
            allowed = info.st_mode & 0o010
        else:
            allowed = info.st_mode & 0o001
        if not allowed:
            return folder
    return None


def _server_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError as error:
        raise MissingTool(
            "running as root needs the `postgres` OS user to own the cluster; "
            "install Debian's postgresql package (`apt-get install -y postgresql`)"
        ) from error


def _trusted_uids() -> frozenset[int]:
    """Who may own OUTSIDE_ROOT and its `<digest>` folders: root, and the user running the stack."""
    return frozenset({0, os.geteuid()})


def _unsafe(folder: Path) -> str | None:
    """Why `folder` cannot be trusted as one the stack made (None when it can, or is absent).

    A folder under world-writable /var/tmp could have been made, or replaced by a symlink, by
    another local user, so that root writes a cluster into, or deletes, a place they choose.
    """
    try:
        info = folder.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return f"is a symlink (to {os.readlink(folder)})"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder"
    if info.st_uid not in _trusted_uids():
        return f"belongs to {_user_name(info.st_uid)}, not to root or {_user_name(os.geteuid())}"
    if info.st_mode & 0o022:
        return f"can be written by other users (mode {stat.filemode(info.st_mode)})"
    return None


def _user_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def check_trusted(*folders: Path) -> None:
    """Refuse (UnsafeFolder) unless each of `folders` that exists is a real folder of root's (or
    the stack user's) that no one else can write to."""
    for folder in folders:
        reason = _unsafe(folder)
        if reason is not None:
            raise UnsafeFolder(
                f"{folder} {reason}: another user could make the stack write or delete where "
                "they choose, so the stack refuses to use it (nothing was deleted); check what "
                f"it holds, then remove it (the stack makes it again, root's with mode "
                f"{OUTSIDE_MODE:o}) or give it that owner and mode"
            )


def _make_trusted(folder: Path) -> None:
    """`folder` (in /var/tmp or in a trusted folder) as a trusted folder of mode OUTSIDE_MODE:
    made when missing, refused when it could be someone else's (see `check_trusted`)."""
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=OUTSIDE_MODE)
    check_trusted(folder)
    # Ours and no symlink (in a sticky or trusted parent none but us can replace it), and the
    # server user must pass through it.
    folder.chmod(OUTSIDE_MODE)


def linked_outside(home: Path) -> Path | None:
    """The `<OUTSIDE_ROOT>/<digest>` folder the symlink `home` points into, by its text or once
    resolved; None when `home` is no symlink or points elsewhere."""
    if not home.is_symlink():
        return None
    root = Path(os.path.abspath(OUTSIDE_ROOT))
    text = Path(os.path.normpath(home.parent / os.readlink(home)))
    for target in (text, home.resolve()):
        if target != root and target.is_relative_to(root):
            return root / target.relative_to(root).parts[0]
    return None


def check_link(home: Path) -> None:
    """Refuse a `<state>/postgres` linking into OUTSIDE_ROOT unless the root and the `<digest>`
    folder it links into are trusted (see `check_trusted`)."""
    folder = linked_outside(home)
    if folder is not None:
        check_trusted(folder.parent, folder)


def outside_home(home: Path, root: Path | None = None) -> Path:
    """Where the cluster of `home` (`<state>/postgres`) lives when it cannot live there."""
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:12]
    return (root or OUTSIDE_ROOT) / digest / "postgres"


def claim(outside: Path, home: Path) -> None:
    """Write the marker naming `home` as the owner of `outside` (atomically: a sweep never reads
    half a path). Written once `home` links to `outside`, so a marked folder is never orphaned
    while it is being set up."""
    marker = outside.parent / OWNER_FILE
    partial = marker.with_name(f".{OWNER_FILE}.partial")
    partial.write_text(f"{home}\n", encoding="utf-8")
    os.replace(partial, marker)


def owner(folder: Path) -> Path | None:
    """The symlink an outside folder (`<OUTSIDE_ROOT>/<digest>`) belongs to, from its marker."""
    try:
        text = (folder / OWNER_FILE).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return Path(text) if text else None


def links_to(home: Path, outside: Path) -> bool:
    """Whether `home` is a symlink to the folder `outside`."""
    return home.is_symlink() and home.resolve() == outside.resolve()


def _is_postmaster(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # alive and unknown: assume the worst
    # A stale postmaster.pid whose pid now belongs to another program is no server.
    return b"postgres" in command


def running_postmaster(cluster: Path) -> int | None:
    """The pid of a live postmaster serving `cluster`'s data folder, from its postmaster.pid."""
    try:
        first = (cluster / "data" / "postmaster.pid").read_text(encoding="utf-8").split()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return -1  # unreadable: treat as running
    if not first or not first[0].isdigit():
        return -1
    pid = int(first[0])
    return pid if _is_postmaster(pid) else None


def orphaned(folder: Path) -> bool:
    """Whether an outside folder has a marker whose symlink no longer exists or points elsewhere.

    A folder without a marker (made before markers were written, or by someone else) is never
    orphaned: whose it is cannot be known.
    """
    home = owner(folder)
    return home is not None and not links_to(home, folder / "postgres")


def orphans(root: Path) -> list[Path]:
    """The orphaned cluster folders under `root` (see `orphaned`), whether or not they run.

    Refused (UnsafeFolder) when `root` or a folder in it could be another user's (see
    `check_trusted`); a symlink in it is never followed.
    """
    if not os.path.lexists(root):
        return []
    check_trusted(root)
    folders = [
        folder for folder in sorted(root.iterdir()) if not folder.is_symlink() and folder.is_dir()
    ]
    check_trusted(*folders)
    return [folder for folder in folders if orphaned(folder)]


def sweep_orphans(root: Path, progress: Progress) -> list[Path]:
    """Remove every orphaned cluster folder under `root` whose server is not running (only on
    request, `stack sweep --delete`: a checkout moved since its cluster was made looks orphaned)."""
    removed = []
    for folder in orphans(root):
        pid = running_postmaster(folder / "postgres")
        if pid is not None:
            progress(f"left {folder}: its state folder is gone but its PostgreSQL runs (pid {pid})")
            continue
        home = owner(folder)
        try:
            shutil.rmtree(folder)
        except OSError as error:
            progress(f"could not remove the orphaned PostgreSQL cluster {folder}: {error}")
            continue
        progress(f"removed the orphaned PostgreSQL cluster {folder} (it was {home}'s)")
        removed.append(folder)
    return removed


def _set_aside_earlier(outside: Path, home: Path, progress: Progress) -> None:
    # The cluster of an earlier state folder at this very path (`rm -rf .stack`), or of a
    # checkout moved away that still links to it: never deleted here, only moved aside (`stack
    # sweep --delete` removes it once nothing links to it).
    if not outside.parent.exists():
        return
    pid = running_postmaster(outside)
    if pid is not None:
        raise StartFailed(
            f"{outside} holds the cluster of an earlier {home}, and its server still runs "
            f"(pid {pid}): stop it (`kill {pid}`), then start again"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    aside = outside.parent.with_name(f"{outside.parent.name}.earlier-{stamp}")
    outside.parent.rename(aside)
    progress(f"moved {outside.parent} (the cluster of an earlier {home}) aside to {aside}")


def _make_home(settings: StackSettings, progress: Progress) -> Path:
    """Create the cluster folder where the server user can reach it.

    As root the server runs as `postgres`; when a parent of the project is private (a clone under
    /root, say) the cluster lives under OUTSIDE_ROOT instead, `.stack/postgres` links to it and a
    marker there names that link. Nothing is deleted on the way: a moved checkout still links to
    its cluster, whose marker names the old path (`stack sweep` lists what no link reaches).
    """
    home = settings.state / "postgres"
    if home.exists():
        check_link(home)
        return home.resolve()
    if home.is_symlink():
        progress(f"{home} links to {home.resolve()}, which is gone: making a new cluster")
        home.unlink()
    if os.geteuid() == 0:
        account = _server_account()
        gids = {account.pw_gid, *os.getgrouplist(SERVER_USER, account.pw_gid)}
        blocked = blocking_folder(home.parent, account.pw_uid, gids)
        if blocked is not None:
            outside = outside_home(home)
            # /var/tmp is everyone's: our folder there, and the one in it, must be root's alone.
            _make_trusted(outside.parent.parent)
            check_trusted(outside.parent)
            _set_aside_earlier(outside, home, progress)
            _make_trusted(outside.parent)
            outside.mkdir(mode=0o700)
            home.parent.mkdir(parents=True, exist_ok=True)
            home.symlink_to(outside, target_is_directory=True)
            claim(outside, home)
            progress(f"{blocked} is private to the postgres user: the cluster lives in {outside}")
            return outside
    home.mkdir(parents=True, exist_ok=True)
    return home.resolve()


def purge(settings: StackSettings, progress: Progress) -> list[Path]:
    """Delete the private cluster for good: `<state>/postgres` and, when it links to a cluster
    under OUTSIDE_ROOT, that cluster and its folder. Refused while its server runs.

    A symlink to a folder the stack did not make (outside OUTSIDE_ROOT, or not the one of this
    state folder) is removed without touching what it points to. A link into OUTSIDE_ROOT whose
    root or `<digest>` folder could be another user's (see `check_trusted`) is refused, and
    nothing is deleted.
    """
    home = settings.state / "postgres"
    if not home.exists() and not home.is_symlink():
        return []
    check_link(home)
    cluster = home.resolve()
    pid = running_postmaster(cluster)
    if pid is not None:
        raise StackError(
            f"PostgreSQL still runs from {cluster / 'data'} (pid {pid}): stop it first "
            "(`loan-engine stack down`); nothing was deleted"
        )
    removed = []
    if home.is_symlink():
        outside = outside_home(home)
        ours = links_to(home, outside) and owner(outside.parent) in (home, None)
        if ours:
            # The marker first: a sweep of another stack never races this removal.
            (outside.parent / OWNER_FILE).unlink(missing_ok=True)
            if outside.parent.exists():
                shutil.rmtree(outside.parent)
                removed.append(outside.parent)
        else:
            progress(f"left {cluster}: {home} links to it but the stack did not make it")
        home.unlink()
    else:
        shutil.rmtree(home)
    removed.append(home)
    return removed


def _own_for_server_user(path: Path) -> None:
    if os.geteuid() != 0:
        return
    account = _server_account()
    # Never through a symlink: the server user could plant one naming any file of root's.
    for folder, folders, files in os.walk(path.resolve()):
        os.chown(folder, account.pw_uid, account.pw_gid, follow_symlinks=False)
        for name in (*folders, *files):
            os.chown(Path(folder) / name, account.pw_uid, account.pw_gid, follow_symlinks=False)


def _mark_outside(settings: StackSettings) -> None:
    # A cluster made under OUTSIDE_ROOT before markers were written gets its marker now.
    home = settings.state / "postgres"
    outside = outside_home(home)
    if links_to(home, outside) and owner(outside.parent) is None:
        claim(outside, home)


def initialise(settings: StackSettings, binaries: Path, progress: Progress) -> Path:
    """`initdb` the private cluster once; return its data folder."""
    check_link(settings.state / "postgres")
    data = cluster_dir(settings) / "data"
    if (data / "PG_VERSION").exists():
        _mark_outside(settings)
        return data
    home = _make_home(settings, progress)
    data = home / "data"
    progress(f"initialising a PostgreSQL cluster in {data}")
    _own_for_server_user(home)
    _run(
        [
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        "initdb",
    )
    with (data / "postgresql.conf").open("a", encoding="utf-8") as config:
        config.write(CLUSTER_CONFIG)
    return data


def is_running(settings: StackSettings, binaries: Path) -> bool:
    """Whether the private cluster's postmaster is running."""
    data = cluster_dir(settings) / "data"
    if not (data / "PG_VERSION").exists():
        return False
    result = subprocess.run(
        _as_server_user([str(binaries / "pg_ctl"), "status", "-D", str(data)]),
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0


def start(settings: StackSettings, progress: Progress) -> bool:
    """Start the private cluster unless running; create the database. True when started now."""
    binaries = bin_dir(settings, progress)
    data = initialise(settings, binaries, progress)
    started = False
    if not is_running(settings, binaries):
        ports.require_free(settings.postgres_port, "PostgreSQL", "STACK_POSTGRES_PORT")
        progress(f"starting PostgreSQL on 127.0.0.1:{settings.postgres_port}")
        _own_for_server_user(cluster_dir(settings))
        _run(
            [
                str(binaries / "pg_ctl"),
                "start",
                "-D",
                str(data),
                "-w",
                "-t",
                "60",
                "-l",
                str(cluster_dir(settings) / "postgres.log"),
                "-o",
                f"-p {settings.postgres_port}",
            ],
            "starting PostgreSQL",
        )
        started = True
    asyncio.run(
        databases.create_database(server_url(settings), settings.postgres_database, exist_ok=True)
    )
    return started


def stop(settings: StackSettings) -> None:
    """Stop the private cluster (fast shutdown) when it runs."""
    binaries = find_bin_dir(
        [settings.postgres_bin_dir]
        if settings.postgres_bin_dir
        else sorted(DEBIAN_ROOT.glob("*/bin"))
    )
    if binaries is None or not is_running(settings, binaries):
        return
    _run(
        [
            str(binaries / "pg_ctl"),
            "stop",
            "-D",
            str(cluster_dir(settings) / "data"),
            "-m",
            "fast",
            "-w",
            "-t",
            "60",
        ],
        "stopping PostgreSQL",
    )


def healthy(url: str) -> bool:
    """Whether the database at `url` answers."""
    return asyncio.run(databases.can_connect(url))


def log_file(settings: StackSettings) -> Path:
    """The private cluster's server log."""
    return cluster_dir(settings) / "postgres.log"


def which_psql() -> str | None:
    """psql on PATH, for the user's convenience in status output."""
    return shutil.which("psql")
