"""A throwaway PostgreSQL cluster for the tests and the benchmarks.

``Cluster.start()`` finds Debian's server binaries (``/usr/lib/postgresql/*/bin``, or
``$PG_BINDIR``), runs ``initdb`` in a fresh temporary folder and starts the server on 127.0.0.1
with a free port and its socket in that folder.  The cluster runs as an unprivileged user: as
root, the ``postgres`` user that Debian's package creates (through ``runuser``); otherwise the
current user.  The superuser ``tempodb`` has a random password.  ``stop()`` shuts the server
down and removes the folder; nothing outside the folder is touched.  ``make test`` installs the
package first when no binaries are found (``scripts/ensure-postgres.sh``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

SUPERUSER = "tempodb"
RUN_AS_WHEN_ROOT = "postgres"


class ClusterError(RuntimeError):
    """The throwaway cluster could not be set up."""


def find_bindir() -> Path:
    """The folder of ``initdb``, ``pg_ctl`` and ``postgres`` (the newest version installed)."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))

    def version(path: Path) -> tuple[int, ...]:
        parts = path.parent.name.split(".")
        return tuple(int(p) for p in parts if p.isdigit())

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise ClusterError(
        "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin: "
        "run scripts/ensure-postgres.sh (make test does) or set PG_BINDIR"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """A running throwaway cluster; ``url()`` gives a connection URL for one of its databases."""

    bindir: Path
    root: Path
    port: int
    password: str
    run_as: str | None
    _stopped: bool = field(default=False, repr=False)
    _options: list[str] = field(default_factory=list, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str = "postgres") -> str:
        return (
            f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}@127.0.0.1:"
            f"{self.port}/{dbname}"
        )

    @staticmethod
    def start(
        *, fsync: bool = False, settings: Sequence[str] = (), password: str | None = None
    ) -> Cluster:
        """initdb and start a cluster; ``fsync=False`` (the tests) trades crash safety for
        speed, which a throwaway cluster does not need.  ``settings``: more ``name=value``.
        ``password``: the superuser's (random by default)."""
        bindir = find_bindir()
        run_as = RUN_AS_WHEN_ROOT if os.geteuid() == 0 else None
        # As root, the folder goes into /tmp, which the cluster's user can reach (TMPDIR may be
        # a folder of root's own).
        root = Path(tempfile.mkdtemp(prefix="tempodb-pg-", dir="/tmp" if run_as else None))
        password = password or secrets.token_hex(16)
        cluster = Cluster(bindir, root, 0, password, run_as)
        try:
            if run_as is not None:
                try:
                    user = pwd.getpwnam(run_as)
                except KeyError:
                    raise ClusterError(
                        f"running as root, the cluster runs as the {run_as!r} user, which does "
                        "not exist: install Debian's postgresql package"
                    ) from None
                os.chown(root, user.pw_uid, user.pw_gid)
            root.chmod(0o700)
            cluster._write(root / "pwfile", password + "\n")
            # The server's libpq (Citus connects node to node) reads $HOME: the folder's own.
            cluster._write(root / ".pgpass", f"*:*:*:{SUPERUSER}:{password}\n")
            cluster._run(
                "initdb",
                "-D",
                str(cluster.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={root / 'pwfile'}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
            options = [
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={root}",
                "-c max_connections=300",
                "-c shared_buffers=128MB",
                f"-c fsync={'on' if fsync else 'off'}",
                f"-c full_page_writes={'on' if fsync else 'off'}",
                *(f"-c {s}" for s in settings),
            ]
            cluster._options = options
            for attempt in range(3):  # the free port may be taken before the server binds it
                cluster.port = free_port()
                try:
                    cluster.restart()
                    break
                except ClusterError:
                    if attempt == 2:
                        raise
        except BaseException:
            cluster.stop()
            raise
        atexit.register(cluster.stop)
        return cluster

    def restart(self) -> None:
        """Start the server on its data, port and settings (after ``kill``)."""
        self._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.root / "server.log"),
            "-o",
            " ".join([f"-p {self.port}", *self._options]),
        )

    def kill(self) -> None:
        """Stop the server at once, as a crash would (``immediate``: no checkpoint, every
        connection dropped; the next start recovers from the WAL)."""
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")

    def stop(self) -> None:
        """Stop the server (if it runs) and remove the folder."""
        if self._stopped:
            return
        self._stopped = True
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(ClusterError):
                self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")
        shutil.rmtree(self.root, ignore_errors=True)

    def admin(self, *statements: str, dbname: str = "postgres") -> None:
        """Run statements (e.g. CREATE DATABASE) as the superuser, outside a transaction."""
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create a database and return its URL."""
        suffix = f' TEMPLATE "{template}"' if template else ""
        self.admin(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def log(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o600)
        if self.run_as is not None:
            user = pwd.getpwnam(self.run_as)
            os.chown(path, user.pw_uid, user.pw_gid)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self.run_as is not None:  # (runuser sets HOME to the user's: set it after)
            command = ["runuser", "-u", self.run_as, "--", "env", f"HOME={self.root}", *command]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "HOME": str(self.root)},
        )
        if done.returncode != 0:
            raise ClusterError(
                f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
                f"\n{self.log()[-2000:]}"
            )


def citus_installed() -> bool:
    """Whether the Citus extension is installed for the server binaries ``find_bindir`` finds."""
    try:
        bindir = find_bindir()
    except ClusterError:
        return False
    return (bindir.parent / "lib" / "citus.so").is_file()


#: What to say when Citus is missing (the tests then skip, or fail under ``CI=true``).
CITUS_MISSING = (
    "Citus is not installed, so the Citus tests did not run: install it with "
    "`bash scripts/ensure-citus.sh` (from ../shared/citus/) or from Citus' own packages"
)


@dataclass
class CitusCluster:
    """A throwaway Citus cluster on loopback: a coordinator and workers, each a ``Cluster``
    with Citus loaded (``../shared/citus/README.md``).  ``create_database`` makes a database
    on every node, with the extension and the workers added: its URL is the coordinator's."""

    coordinator: Cluster
    workers: list[Cluster]

    @staticmethod
    def start(*, workers: int = 2, fsync: bool = False) -> CitusCluster:
        if not citus_installed():
            raise ClusterError(CITUS_MISSING)
        password = secrets.token_hex(16)
        settings = [
            "shared_preload_libraries=citus",
            "max_prepared_transactions=200",
            # The throwaway nodes are small: fewer connections between them.
            "citus.max_adaptive_executor_pool_size=4",
            "citus.shard_count=4",
        ]
        nodes: list[Cluster] = []
        try:
            for _ in range(workers + 1):
                nodes.append(Cluster.start(fsync=fsync, settings=settings, password=password))
        except BaseException:
            for node in nodes:
                node.stop()
            raise
        cluster = CitusCluster(nodes[0], nodes[1:])
        atexit.register(cluster.stop)
        return cluster

    @property
    def nodes(self) -> list[Cluster]:
        return [self.coordinator, *self.workers]

    def url(self, dbname: str = "postgres") -> str:
        return self.coordinator.url(dbname)

    def create_database(self, name: str) -> str:
        """A database on every node with the extension, the workers added; its URL."""
        for node in [*self.workers, self.coordinator]:
            node.admin(f'CREATE DATABASE "{name}"')
            node.admin("CREATE EXTENSION citus", dbname=name)
        self.coordinator.admin(
            f"SELECT citus_set_coordinator_host('127.0.0.1', {self.coordinator.port})",
            *(f"SELECT citus_add_node('127.0.0.1', {w.port})" for w in self.workers),
            dbname=name,
        )
        return self.url(name)

    def tempodb_database(self, name: str) -> str:
        """A database prepared for tempodb by ``tempodb citus setup``; its URL."""
        from tempodb.storage.postgres.citus import setup

        url = self.create_database(name)
        setup(url)
        return url

    def admin(self, *statements: str, dbname: str = "postgres") -> None:
        self.coordinator.admin(*statements, dbname=dbname)

    def log(self) -> str:
        return "\n".join(node.log()[-2000:] for node in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
