"""What `fengqiao dev` does: embedded PostgreSQL and broker (unless real ones are configured),
topics, migrations, the demo seed, every registered service in its own supervised process, and a
clean stop on Ctrl-C. The services come from the registry; none is named here."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import SecretStr

from fengqiao.admin import STATION_TZ, migrate_all, seed_demo
from fengqiao.devstack import EmbeddedBroker, EmbeddedPostgres, start_service, stop_process, wait_ready
from fengqiao.registry import ServiceDescriptor, registered_services
from fengqiao.settings import Settings

if TYPE_CHECKING:
    from fengqiao.devoutbox import DevOutbox

STATE_FILE = "dev-stack.json"


class Supervisor:
    """Runs each service as its own process and restarts one that dies, with backoff."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = {}
        self.next_start: dict[str, float] = {}

    def start(self, name: str) -> None:
        self.procs[name] = start_service(name, self.env, self.log_dir / f"{name}.log")

    def check(self) -> None:
        now = time.monotonic()
        for name, proc in list(self.procs.items()):
            if proc.poll() is None:
                continue
            if name not in self.next_start:
                count = self.restarts.get(name, 0) + 1
                self.restarts[name] = count
                delay = min(30.0, 0.5 * 2 ** (count - 1))
                self.next_start[name] = now + delay
                click.secho(
                    f"[dev] {name} exited with code {proc.returncode}; restarting in {delay:.1f}s "
                    f"(restart #{count}; log: {self.log_dir / (name + '.log')})",
                    fg="yellow",
                    err=True,
                )
            elif now >= self.next_start[name]:
                del self.next_start[name]
                self.start(name)
                click.secho(f"[dev] {name} restarted", fg="yellow", err=True)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            stop_process(proc, signal.SIGTERM, timeout=20)


class DevStack:
    """One run of `fengqiao dev`: `start()`, `watch()` until asked to stop, then `stop()`."""

    def __init__(self, settings: Settings, *, clean: bool, seed: bool) -> None:
        self.settings = settings
        self.clean = clean
        self.seed = seed
        self.home = settings.fengqiao_home.resolve()
        self.logs = self.home / "logs"
        self.services: tuple[ServiceDescriptor, ...] = registered_services()
        self.pg: EmbeddedPostgres | None = None
        self.broker: EmbeddedBroker | None = None
        self.supervisor: Supervisor | None = None
        self.dev_outbox: DevOutbox | None = None
        self.stopping = False

    def request_stop(self, _signum: int = 0, _frame: object = None) -> None:
        self.stopping = True

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        dsn, bootstrap = self._database(), self._broker()
        self._prepare(dsn, bootstrap)
        credentials = self._seed(dsn) if self.seed else []
        self.supervisor = Supervisor(self._service_env(dsn, bootstrap), self.logs)
        for descriptor in self.services:
            self.supervisor.start(descriptor.name)
        urls = {d.name: f"http://127.0.0.1:{d.port(self.settings)}" for d in self.services}
        for name, why in wait_ready(urls, timeout=90).items():
            click.secho(
                f"[dev] {name} is not ready yet: {why[:200]} (log: {self.logs / (name + '.log')})", fg="red", err=True
            )
        self._print_banner(urls, credentials)

    def _database(self) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        port = self.settings.embedded_pg_port
        self.pg = EmbeddedPostgres(self.home / "pg", port, self.logs / "postgres.log")
        if self.clean:
            self.pg.clean()
            click.echo("[dev] removed the embedded database (--clean)")
        click.echo(f"[dev] starting embedded PostgreSQL on 127.0.0.1:{port} (data: {self.pg.data_dir})")
        return self.pg.start()

    def _broker(self) -> str:
        if self.settings.kafka_bootstrap_servers:
            return self.settings.kafka_bootstrap_servers
        port = self.settings.broker_port
        self.broker = EmbeddedBroker(port, self.logs / "broker.log")
        click.echo(f"[dev] starting embedded Kafka broker (Tansu, memory only) on 127.0.0.1:{port}")
        return self.broker.start()

    def _prepare(self, dsn: str, bootstrap: str) -> None:
        """Topics and migrations; then the state file other commands find the stack by."""
        from fengqiao.events import Topics
        from fengqiao.kafka import create_topics

        created = asyncio.run(
            create_topics(
                bootstrap,
                Topics.all(),
                partitions=self.settings.kafka_topic_partitions,
                replication=self.settings.kafka_replication_factor,
                compacted=frozenset({Topics.DIRECTORY}),
            )
        )
        click.echo(f"[dev] topics ready ({len(created)} created)")
        for name, applied in asyncio.run(migrate_all(dsn)).items():
            click.echo(f"[dev] {name}: {len(applied)} migration(s) applied")
        (self.home / STATE_FILE).write_text(
            json.dumps({"database_url": dsn, "kafka_bootstrap_servers": bootstrap, "pid": os.getpid()})
        )

    def _seed(self, dsn: str) -> list[dict[str, Any]]:
        credentials = asyncio.run(seed_demo(dsn))
        creds_file = self.home / "dev-credentials.json"
        creds_file.write_text(
            json.dumps(
                {"generated_at": datetime.now(STATION_TZ).isoformat(), "accounts": credentials},
                ensure_ascii=False,
                indent=2,
            )
        )
        creds_file.chmod(0o600)
        return credentials

    def _service_env(self, dsn: str, bootstrap: str) -> dict[str, str]:
        settings, home = self.settings, self.home
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "FENGQIAO_PII_KEYS": dev_secret(settings.pii_keys, home / "pii-keys", "dev1"),
            "FENGQIAO_PII_INDEX_KEY": dev_secret(settings.pii_index_key, home / "pii-index-key", None),
            "FENGQIAO_LINK_KEY": dev_secret(settings.link_key, home / "link-key", None),
            "FENGQIAO_COOKIE_SECURE": os.environ.get("FENGQIAO_COOKIE_SECURE", "false"),  # plain HTTP on 127.0.0.1
        }
        if not (os.environ.get("SMS_GATEWAY_URL") or os.environ.get("NOTIFY_SMTP_HOST")):
            from fengqiao.devoutbox import DevOutbox

            dev_outbox = self.dev_outbox = DevOutbox(home / "outbox")
            env.update(dev_outbox.start())
            click.echo(f"[dev] citizens' SMS and e-mail are written to {dev_outbox.folder} (no real gateway)")
        return env

    def watch(self) -> None:
        """Restart services that die; stop everything if the database or the broker dies."""
        while not self.stopping:
            if self.supervisor is not None:
                self.supervisor.check()
            for what, embedded in (("PostgreSQL", self.pg), ("Kafka broker", self.broker)):
                proc = embedded.proc if embedded is not None else None
                if proc is not None and proc.poll() is not None:
                    click.secho(
                        f"[dev] the embedded {what} exited (code {proc.returncode}); stopping", fg="red", err=True
                    )
                    self.stopping = True
            time.sleep(0.5)
        click.echo("\n[dev] stopping…")

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop_all()
        if self.dev_outbox is not None:
            self.dev_outbox.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.pg is not None:
            self.pg.stop()
        (self.home / STATE_FILE).unlink(missing_ok=True)
        click.echo("[dev] stopped")

    def _print_banner(self, urls: dict[str, str], credentials: list[dict[str, Any]]) -> None:
        rule = "=" * min(shutil.get_terminal_size((100, 20)).columns, 100)
        click.echo(rule)
        click.secho("枫桥 Fengqiao dev stack is running", bold=True)
        for d in self.services:
            url = urls[d.name]
            click.echo(f"  {d.name:<10} {url:<28} {d.label or d.name}  (health {url}/readyz, metrics {url}/metrics)")
        if credentials:
            click.echo("Demo accounts (sign-in user name and password; API: Authorization: Bearer <token>):")
            for c in credentials:
                sign_in = f"{c['username']} / {c['password']}" if c.get("username") else "-"
                click.echo(f"  {c['station'] or '-':<5} {c['role']:<11} {c['name']:<8} {sign_in:<32} {c['token']}")
            click.echo(f"  (also in {self.home / 'dev-credentials.json'})")
        click.echo(f"Logs: {self.logs}")
        for d in self.services:
            for hint in d.dev_hints:
                click.echo(hint.replace("{url}", urls[d.name]))
        click.echo("Press Ctrl-C to stop everything.")
        click.echo(rule)


def dev_secret(configured: SecretStr | None, path: Path, kid: str | None) -> str:
    """The configured key, else a development key kept in .fengqiao/ (created once; losing it makes
    the personal data of the dev database unreadable)."""
    if configured:
        return configured.get_secret_value()
    from fengqiao.pii import new_index_key_setting, new_key_setting

    if not path.exists():
        path.write_text(new_key_setting(kid) if kid else new_index_key_setting())
        path.chmod(0o600)
        click.echo(f"[dev] created a development key: {path}")
    return path.read_text().strip()
