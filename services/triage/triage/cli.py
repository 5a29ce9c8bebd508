"""`fengqiao triage ...`: the benchmark, retraining and model versions."""

from __future__ import annotations

import asyncio
import json

import click


@click.group()
def triage() -> None:
    """Triage's classification engine: benchmark, retrain, activate models."""


@triage.command()
@click.option(
    "--data",
    "data",
    envvar="FENGQIAO_BENCH_DATA",
    default="../shared/data",
    show_default=True,
    help="folder holding teddycup2020/ and msgabench/",
)
@click.option("--json", "out", help="also write the results to this JSON file")
@click.option(
    "--only",
    multiple=True,
    help="run only this task (repeatable): teddycup_details, msgabench_type, teddycup_titles, "
    "corpus_cv, corpus_test, corpus_late",
)
def bench(data: str, out: str | None, only: tuple[str, ...]) -> None:
    """Train on the public sets' training splits and report on their test splits; then the engine
    on the police corpus (CV on train, test, late)."""
    from triage.bench import main

    try:
        main(data, out, only)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc


@triage.command("bench-urgent")
def bench_urgent() -> None:
    """Urgent recall and false alarms of the urgent-signal layer on the contrast pairs."""
    from triage.urgent_bench import main

    main()


async def _with_conn(fn):
    import asyncpg

    from fengqiao.cli import _connection_from_state
    from fengqiao.settings import Settings

    dsn, _ = _connection_from_state(Settings())
    if not dsn:
        raise click.ClickException("set DATABASE_URL, or start `fengqiao dev` first")
    conn = await asyncpg.connect(dsn, server_settings={"search_path": "triage"})
    try:
        async with conn.transaction():
            return await fn(conn)
    finally:
        await conn.close()


def _signer():
    from fengqiao.settings import Settings
    from triage.signing import ModelSigner

    settings = Settings()
    signer = ModelSigner.from_settings(settings)
    dev_key = settings.fengqiao_home / "pii-index-key"  # what `fengqiao dev` gave its services
    if signer is None and dev_key.exists():
        signer = ModelSigner.from_settings(Settings(FENGQIAO_PII_INDEX_KEY=dev_key.read_text().strip()))
    if signer is None:
        raise click.ClickException("set FENGQIAO_PII_INDEX_KEY (the deployment's key signs model artifacts)")
    return signer


@triage.command()
@click.option("--activate", is_flag=True, help="make the new version the one in use")
@click.option("--by", default="cli", show_default=True, help="who trained it (recorded)")
def train(activate: bool, by: str) -> None:
    """Retrain from the seed set plus staff corrections and compare with the active model."""
    from triage.training import train as run

    signer = _signer()
    report = asyncio.run(_with_conn(lambda conn: run(conn, activate=activate, by=by, signer=signer)))
    click.echo(
        f"new version {report['version']} (seed {report['examples']['seed']}, "
        f"corrections {report['examples']['corrections']}, {report['train_seconds']} s)"
    )
    click.echo("cross-validated macro-F1   active -> new")
    for head, s in report["scores"].items():
        before, after = s["before"], s["after"]
        delta = f"{after - before:+.3f}" if before is not None and after is not None else ""
        click.echo(
            f"  {head:<9} {before if before is not None else '-':>8} -> {after if after is not None else '-'}  {delta}"
        )
    if report["active_model_on_corrections"]:
        click.echo(
            "active model agreed with the corrections: "
            + ", ".join(f"{h} {v}" for h, v in report["active_model_on_corrections"].items())
        )
    if report["activated"]:
        click.echo(f"activated {report['version']} (was {report['active_before']}); services load it within 10 s")
    else:
        click.echo(f"not activated; to use it: fengqiao triage activate {report['version']}")


@triage.command()
@click.argument("version")
@click.option("--by", default="cli", show_default=True)
def activate(version: str, by: str) -> None:
    """Make VERSION the model in use (services follow within 10 s)."""
    from triage.signing import ModelRejected
    from triage.training import activate as run

    signer = _signer()
    try:
        found = asyncio.run(_with_conn(lambda conn: run(conn, version, by, signer)))
    except ModelRejected as exc:
        raise click.ClickException(
            f"model version {version!r} is not signed with this deployment's key ({exc})"
        ) from None
    if not found:
        raise click.ClickException(f"no model version {version!r}")
    click.echo(f"activated {version}")


@triage.command("models")
def list_models() -> None:
    """Model versions, newest first, with their scores."""
    from triage import db

    rows = asyncio.run(_with_conn(db.models))
    for r in rows:
        scores = json.loads(r["scores"]) if isinstance(r["scores"], str) else r["scores"]
        flag = "*" if r["active"] else " "
        f1 = ", ".join(f"{h} {s['macro_f1']}" for h, s in scores.items())
        click.echo(f"{flag} {r['version']}  {r['created_at']:%Y-%m-%d %H:%M}  {f1}")
