"""Model lifecycle: the shipped model, retraining from corrections, versions and activation.

The shipped ("seed") model is trained on the corpus's train split plus the relabelled seed rows
(`shipped_examples`); its version hashes the engine revision and those files, so a release that
changes them replaces a shipped model still in use (never a model retrained from corrections).
`fengqiao triage train` builds a candidate from the same examples plus every correction, reports its
cross-validated scores beside the active model's (and how the active model fared on the
corrections), stores it as a new version, and activates it only when asked (`--activate`)."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from importlib import resources

import asyncpg

from triage import db
from triage.model import HEADS, SEED_FILE, Example, TextModel, corpus_files, cross_validate, shipped_examples
from triage.signing import ModelRejected, ModelSigner
from triage.text import normalise

MODEL_FAMILY = "police"
# Bump when the features or the classifier change, so the seed model is retrained.
ENGINE_REVISION = "tfidf-char13-word12-linearsvc-corpus-2"
SEED_PREFIX = f"{MODEL_FAMILY}-seed-"
_SEED_LOCK = 0x7472_6961_6765  # advisory lock: one replica trains the seed model


def seed_version() -> str:
    digest = hashlib.sha256(ENGINE_REVISION.encode())
    digest.update(resources.files("triage").joinpath(SEED_FILE).read_bytes())
    for path in corpus_files():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return f"{SEED_PREFIX}{digest.hexdigest()[:10]}"


def _current(version: str | None, signed: bool) -> bool:
    """The active model needs no (re)building: a retrained model, or this release's shipped one, signed.
    An older release's shipped model is replaced by this one's (it was trained on the old data)."""
    if version is None:
        return False
    if not version.startswith(SEED_PREFIX):
        return True
    return version == seed_version() and signed


def evaluate(examples: list[Example]) -> dict:
    out = {}
    for head in HEADS:
        s = cross_validate(examples, head)
        if s is not None:
            out[head] = {"macro_f1": round(s.macro_f1, 4), "accuracy": round(s.accuracy, 4), "examples": s.support}
    return out


def build(examples: list[Example]) -> tuple[TextModel, bytes, str]:
    model = TextModel().fit(examples)
    artifact = model.dumps()
    return model, artifact, hashlib.sha256(artifact).hexdigest()


def seed_model() -> TextModel:
    """The shipped model rebuilt from the shipped data: what a replica uses when the stored active
    artifact does not verify and it has no earlier model to keep."""
    return TextModel().fit(shipped_examples())


async def ensure_active_model(conn: asyncpg.Connection, signer: ModelSigner | None) -> str | None:
    """The active version; on a new deployment, trains the seed model, signs and activates it.
    A seed model stored before artifacts were signed is rebuilt from the shipped data and signed
    (its stored bytes are never trusted). Without a signing key nothing is trained (None: rules only)."""
    version = await db.active_model_version(conn)
    if signer is None or _current(version, version is not None and await db.model_signed(conn, version)):
        return version
    await db.lock_seed_training(conn, _SEED_LOCK)
    version = await db.active_model_version(conn)
    if _current(version, version is not None and await db.model_signed(conn, version)):
        return version
    examples = shipped_examples()
    seed = seed_version()
    _, artifact, sha = build(examples)
    signature = signer.sign(seed, artifact)
    if await db.model_artifact(conn, seed) is not None:  # stored unsigned, or stored but not active
        await db.replace_artifact(conn, seed, artifact, sha, signature)
        await db.activate_model(conn, seed, "system:seed")
        return seed
    # No cross-validation here: over the corpus it takes seconds a replica's start should not wait
    # for; `fengqiao triage train` computes it when it compares (and `make bench-triage` reports it).
    await db.save_model(conn, seed, artifact, sha, signature, {"seed": len(examples), "corrections": 0}, {})
    await db.activate_model(conn, seed, "system:seed")
    return seed


def correction_examples(rows) -> list[Example]:
    return [Example(normalise(r["text"]), {h: r[h] for h in HEADS if r[h]}) for r in rows]


async def train(conn: asyncpg.Connection, *, activate: bool, by: str, signer: ModelSigner) -> dict:
    seed = shipped_examples()
    corrected = correction_examples(await db.corrections(conn))
    examples = seed + corrected
    started = time.perf_counter()
    _model, artifact, sha = build(examples)
    candidate_scores = evaluate(examples)
    seconds = round(time.perf_counter() - started, 2)
    version = f"{MODEL_FAMILY}-{datetime.now(UTC):%Y%m%d%H%M%S}-{sha[:8]}"

    active = await db.active_model_version(conn)
    active_scores: dict = {}
    agreement: dict[str, str] = {}
    if active:
        active_scores, agreement = await _active_model_report(conn, active, corrected, signer)
    await db.save_model(
        conn,
        version,
        artifact,
        sha,
        signer.sign(version, artifact),
        {"seed": len(seed), "corrections": len(corrected)},
        candidate_scores,
    )
    if activate:
        await db.activate_model(conn, version, by)
    return {
        "version": version,
        "active_before": active,
        "activated": activate,
        "train_seconds": seconds,
        "examples": {"seed": len(seed), "corrections": len(corrected)},
        "scores": {
            head: {
                "before": active_scores.get(head, {}).get("macro_f1"),
                "after": candidate_scores.get(head, {}).get("macro_f1"),
            }
            for head in HEADS
        },
        "active_model_on_corrections": agreement,
    }


async def _active_model_report(
    conn: asyncpg.Connection, active: str, corrected: list[Example], signer: ModelSigner
) -> tuple[dict, dict[str, str]]:
    """The active model's stored scores, and per head how often it agrees with the corrections ("agreed/labelled")."""
    agreement: dict[str, str] = {}
    row = await db.model_for_report(conn, active)
    assert row is not None, "the active version was just read from the same table"
    active_scores = json.loads(row["scores"]) if isinstance(row["scores"], str) else dict(row["scores"])
    if not active_scores and active.startswith(SEED_PREFIX):
        active_scores = evaluate(shipped_examples())  # the shipped model stores none (see ensure_active_model)
    old = None
    if corrected:
        try:
            old = TextModel.loads(row["artifact"], version=active, signature=row["signature"], signer=signer)
        except ModelRejected:
            old = None  # never unpickled; the report simply has no agreement figures
    if old is not None:
        predictions = old.predict([e.text for e in corrected])
        for head in HEADS:
            labelled = [
                (p[head].label, e.labels[head])
                for p, e in zip(predictions, corrected, strict=False)
                if head in e.labels and head in p
            ]
            if labelled:
                agreement[head] = f"{sum(a == b for a, b in labelled)}/{len(labelled)}"
    return active_scores, agreement


async def activate(conn: asyncpg.Connection, version: str, by: str, signer: ModelSigner) -> bool:
    """Only a version whose artifact verifies can be put in use (the replicas would refuse it)."""
    row = await db.model_artifact(conn, version)
    if row is None:
        return False
    signer.verify(version, row["artifact"], row["signature"])  # ModelRejected
    await db.activate_model(conn, version, by)
    return True
