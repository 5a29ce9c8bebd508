"""The statistical half of classification: TF-IDF over character 1-3-grams and rjieba word
1-2-grams, one linear SVM per head (type, category, urgency). CPU only, trained in seconds,
nothing downloaded.

A `TextModel` is trained from labelled examples (the seed set shipped in `data/`, plus a
deployment's corrections) and stored versioned in triage's database as a pickled artifact with
its SHA-256; every decision records the version that made it."""

from __future__ import annotations

import csv
import hashlib
import io
import pickle
from dataclasses import dataclass, field
from importlib import resources
from typing import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, classification_report, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from triage.text import normalise, words

HEADS = ("type", "category", "urgency")
SEED_FILE = "data/seed_police.tsv"


@dataclass(frozen=True)
class Example:
    text: str
    labels: dict[str, str]  # head -> label; a head may be missing


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float
    scores: dict[str, float]
    top_features: list[str] = field(default_factory=list)


def _softmax(margins: np.ndarray, temperature: float = 0.3) -> np.ndarray:
    z = margins / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class TextModel:
    """Shared features, one classifier per head. `C=0.5` with balanced class weights was chosen by
    5-fold cross-validation on the training splits only (docs/triage.md)."""

    def __init__(self, *, c: float = 0.5, min_df: int | None = None) -> None:
        self.c = c
        self.min_df = min_df  # None: 1 for small (seed) sets, 2 from 2,000 examples on
        self.char = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
        self.word = TfidfVectorizer(analyzer=_identity, sublinear_tf=True)  # tokens carry their bigrams
        self.heads: dict[str, LinearSVC] = {}
        self._names: np.ndarray | None = None

    # -- features ------------------------------------------------------------------------------

    def _prepare(self, texts: Iterable[str]) -> tuple[list[str], list[list[str]]]:
        norm = [normalise(t) for t in texts]
        return norm, [_word_ngrams(words(t)) for t in norm]

    def _fit_features(self, texts: Sequence[str]) -> sp.csr_matrix:
        min_df = self.min_df if self.min_df is not None else (2 if len(texts) >= 2000 else 1)
        self.char.set_params(min_df=min_df)
        self.word.set_params(min_df=min_df)
        norm, tokens = self._prepare(texts)
        return sp.hstack([self.char.fit_transform(norm), self.word.fit_transform(tokens)], format="csr")

    def features(self, texts: Sequence[str]) -> sp.csr_matrix:
        norm, tokens = self._prepare(texts)
        return sp.hstack([self.char.transform(norm), self.word.transform(tokens)], format="csr")

    # -- training ------------------------------------------------------------------------------

    def fit(self, examples: Sequence[Example], heads: Sequence[str] = HEADS) -> "TextModel":
        x = self._fit_features([e.text for e in examples])
        for head in heads:
            rows = [i for i, e in enumerate(examples) if e.labels.get(head)]
            labels = [examples[i].labels[head] for i in rows]
            if len(set(labels)) < 2:
                continue
            self.heads[head] = LinearSVC(C=self.c, class_weight="balanced").fit(x[rows], labels)
        self._names = None
        return self

    # -- prediction ----------------------------------------------------------------------------

    def predict(self, texts: Sequence[str], *, explain: int = 0) -> list[dict[str, Prediction]]:
        x = self.features(texts)
        out: list[dict[str, Prediction]] = [{} for _ in texts]
        for head, clf in self.heads.items():
            margins = clf.decision_function(x)
            if margins.ndim == 1:  # two classes
                margins = np.column_stack([-margins, margins])
            probs = _softmax(margins)
            best = probs.argmax(axis=1)
            for i in range(len(texts)):
                k = int(best[i])
                out[i][head] = Prediction(
                    label=str(clf.classes_[k]), probability=float(probs[i, k]),
                    scores={str(c): float(p) for c, p in zip(clf.classes_, probs[i])},
                    top_features=self._top_features(x[i], clf, k, explain) if explain else [],
                )
        return out

    def predict_labels(self, texts: Sequence[str], head: str) -> np.ndarray:
        return self.heads[head].predict(self.features(texts))

    def _top_features(self, row: sp.csr_matrix, clf: LinearSVC, k: int, n: int) -> list[str]:
        if self._names is None:
            self._names = np.concatenate([self.char.get_feature_names_out(),
                                          self.word.get_feature_names_out()])
        coef = clf.coef_[k] if clf.coef_.shape[0] > 1 else (clf.coef_[0] if k == 1 else -clf.coef_[0])
        contrib = row.data * coef[row.indices]
        names: list[str] = []
        for j in np.argsort(contrib)[::-1]:
            name = str(self._names[row.indices[j]]).replace("\x1f", "")
            if contrib[j] <= 0 or len(names) == n:
                break
            if name.strip() and name not in names:
                names.append(name)
        return names

    # -- persistence ---------------------------------------------------------------------------

    def dumps(self) -> bytes:
        buf = io.BytesIO()
        pickle.dump(self, buf, protocol=pickle.HIGHEST_PROTOCOL)
        return buf.getvalue()

    @staticmethod
    def loads(blob: bytes, sha256: str) -> "TextModel":
        """Only artifacts written by `dumps` into triage's own database are loaded, and only when
        their checksum matches the one stored beside them."""
        if hashlib.sha256(blob).hexdigest() != sha256:
            raise ValueError("model artifact checksum mismatch")
        model = pickle.loads(blob)  # noqa: S301 - our own artifact, checksum verified
        if not isinstance(model, TextModel):
            raise TypeError("not a TextModel artifact")
        return model


def _identity(tokens):
    return tokens


def _word_ngrams(tokens: list[str]) -> list[str]:
    # Word bigrams joined with a unit separator so they never collide with a real word.
    return tokens + [f"{a}\x1f{b}" for a, b in zip(tokens, tokens[1:])]


# -- data ------------------------------------------------------------------------------------------


def seed_examples() -> list[Example]:
    """The labelled seed set shipped with the project (synthetic; see data/README.md)."""
    text = resources.files("triage").joinpath(SEED_FILE).read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    return [Example(r["text"], {h: r[h] for h in HEADS if r.get(h)}) for r in rows]


def read_tsv(path, label_column: str) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        pairs = [(r["text"], r[label_column]) for r in rows if r.get("text") and r.get(label_column)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


# -- evaluation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    macro_f1: float
    accuracy: float
    per_class: dict[str, float]
    support: int

    def as_dict(self) -> dict:
        return {"macro_f1": round(self.macro_f1, 4), "accuracy": round(self.accuracy, 4),
                "per_class": {k: round(v, 4) for k, v in self.per_class.items()}, "support": self.support}


def score(y_true: Sequence[str], y_pred: Sequence[str]) -> Scores:
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    per_class = {k: v["f1-score"] for k, v in report.items() if isinstance(v, dict) and k not in
                 ("macro avg", "weighted avg", "accuracy")}
    return Scores(f1_score(y_true, y_pred, average="macro", zero_division=0), accuracy_score(y_true, y_pred),
                  per_class, len(y_true))


def cross_validate(examples: Sequence[Example], head: str, *, folds: int = 5, seed: int = 0,
                   make=TextModel) -> Scores | None:
    """Out-of-fold predictions of `head` over `examples` (classes with fewer members than folds
    are scored but cannot be stratified perfectly). None when there is too little data."""
    rows = [e for e in examples if e.labels.get(head)]
    labels = np.array([e.labels[head] for e in rows])
    if len(rows) < 10 or len(set(labels)) < 2:
        return None
    counts = np.unique(labels, return_counts=True)[1]
    k = max(2, min(folds, int(counts.min()) if counts.min() >= 2 else 2))
    predicted = np.empty(len(rows), dtype=object)
    splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
    try:
        splits = list(splitter.split(np.zeros(len(rows)), labels))
    except ValueError:
        return None
    for train, test in splits:
        model = make().fit([rows[i] for i in train], heads=(head,))
        if head not in model.heads:
            return None
        predicted[test] = model.predict_labels([rows[i].text for i in test], head)
    return score(labels.tolist(), predicted.tolist())
