"""A real, throwaway PostgreSQL server for tests: initdb + pg_ctl into a temporary folder on a free port.

PostgreSQL refuses to run as root; as root the server runs as the `postgres` system user (Debian's
package creates it), else `nobody`, through a subprocess that drops to that uid. The superuser gets
a password and TCP connections must give it (scram-sha-256), so tests can check it never leaks.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "searcher", "s3cret-Pa55"


def server_binaries() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres (Debian's newest /usr/lib/postgresql/N/bin, or PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a postgres nor a nobody user exists to run PostgreSQL")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    folder: Path
    port: int
    bindir: Path
    user: pwd.struct_passwd | None

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def _call(self, *args: str, timeout: float = 60) -> None:
        def drop():
            if self.user is not None:
                os.setgid(self.user.pw_gid)
                os.setuid(self.user.pw_uid)

        env = {"PATH": os.environ.get("PATH", ""), "LANG": "C", "LC_ALL": "C", "HOME": str(self.folder)}
        subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            timeout=timeout,
            preexec_fn=drop,
            env=env,
            cwd=self.folder,
        )

    @classmethod
    def start(cls, bindir: Path) -> PostgresServer:
        user = _run_as()
        folder = Path(tempfile.mkdtemp(prefix="tc-postgres-"))
        if user is not None:
            os.chown(folder, user.pw_uid, user.pw_gid)
        (folder / "pw").write_text(PASSWORD + "\n")
        if user is not None:
            os.chown(folder / "pw", user.pw_uid, user.pw_gid)
        server = cls(folder, _free_port(), bindir, user)
        server._call(
            "initdb",
            "-D",
            str(folder / "data"),
            "-U",
            USER,
            f"--pwfile={folder / 'pw'}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        )
        server._call(
            "pg_ctl",
            "-D",
            str(folder / "data"),
            "-l",
            str(folder / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
            timeout=90,
        )
        return server

    def stop(self) -> None:
        try:
            self._call("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
