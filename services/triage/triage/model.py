"""The statistical half of classification: TF-IDF over character 1-3-grams and rjieba word
1-2-grams, one linear SVM per head (type, category, urgency). CPU only, trained in seconds,
nothing downloaded.

A `TextModel` is trained from labelled examples (the seed set shipped in `data/`, plus a
deployment's corrections) and stored versioned in triage's database as a pickled artifact with
its HMAC signature (triage/signing.py); every decision records the version that made it."""

from __future__ import annotations

import csv
import io
import itertools
import json
import pickle
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, classification_report, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from triage.signing import ModelRejected, ModelSigner
from triage.text import normalise, words

HEADS = ("type", "category", "urgency")
SEED_FILE = "data/seed_police.tsv"
# The labelled police corpus (services/triage/corpus, issue 14): beside the package, read in place
# (the service is installed editable, in the image too). Its README says how it was written and split.
CORPUS_DIR = Path(__file__).resolve().parents[1] / "corpus"
SPLITS = ("train", "test", "late")


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
    5-fold cross-validation on the public sets' training splits, and confirmed on the corpus's
    train split (C 0.25 / 0.5 / 1 and min_df 1 / 2 all within 0.01: docs/triage.md)."""

    def __init__(self, *, c: float = 0.5, min_df: int | None = None) -> None:
        self.c = c
        self.min_df = min_df  # None: 1 for small (seed) sets, 2 from 2,000 examples on
        self.char = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
        self.word = TfidfVectorizer(analyzer=_identity, sublinear_tf=True)  # tokens carry their bigrams
        self.heads: dict[str, LinearSVC] = {}

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

    def fit(self, examples: Sequence[Example], heads: Sequence[str] = HEADS) -> TextModel:
        x = self._fit_features([e.text for e in examples])
        for head in heads:
            rows = [i for i, e in enumerate(examples) if e.labels.get(head)]
            labels = [examples[i].labels[head] for i in rows]
            if len(set(labels)) < 2:
                continue
            self.heads[head] = LinearSVC(C=self.c, class_weight="balanced").fit(x[rows], labels)
        self.__dict__.pop("_fast", None)
        return self

    # -- prediction ----------------------------------------------------------------------------

    def predict(self, texts: Sequence[str], *, explain: int = 0) -> list[dict[str, Prediction]]:
        """One message at a time on the compiled path (the service's case: sklearn's input
        validation costs more than the arithmetic for a single row)."""
        fast = self._compiled()
        out: list[dict[str, Prediction]] = []
        for text in texts:
            indices, values = fast.features(text)
            result: dict[str, Prediction] = {}
            for head, (weights, bias, classes) in fast.heads.items():
                rows = weights[indices]
                margins = values @ rows + bias
                probs = _softmax(margins[None, :] if margins.ndim == 1 else margins)[0]
                k = int(probs.argmax())
                top: list[str] = []
                if explain:
                    contrib = values * rows[:, k]
                    for j in np.argsort(contrib)[::-1]:
                        if contrib[j] <= 0 or len(top) == explain:
                            break
                        name = fast.names[indices[j]].replace("\x1f", "")
                        if name.strip() and name not in top:
                            top.append(name)
                result[head] = Prediction(
                    label=classes[k],
                    probability=float(probs[k]),
                    scores=dict(zip(classes, map(float, probs), strict=False)),
                    top_features=top,
                )
            out.append(result)
        return out

    def _compiled(self) -> _Compiled:
        fast = self.__dict__.get("_fast")
        if fast is None:
            fast = self.__dict__["_fast"] = _Compiled(self)
        return fast

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_fast", None)  # rebuilt on first use
        return state

    def predict_labels(self, texts: Sequence[str], head: str) -> np.ndarray:
        return self.heads[head].predict(self.features(texts))

    # -- persistence ---------------------------------------------------------------------------

    def dumps(self) -> bytes:
        buf = io.BytesIO()
        pickle.dump(self, buf, protocol=pickle.HIGHEST_PROTOCOL)
        return buf.getvalue()

    @staticmethod
    def loads(blob: bytes, *, version: str, signature: str | None, signer: ModelSigner | None) -> TextModel:
        """Only artifacts signed with the deployment's key are unpickled: the signature is checked
        on the bytes before `pickle` sees them (triage/signing.py). ModelRejected otherwise."""
        if signer is None:
            raise ModelRejected("no_signing_key")
        signer.verify(version, blob, signature)
        model = pickle.loads(blob)
        if not isinstance(model, TextModel):
            raise ModelRejected("not_a_text_model")
        return model


class _Compiled:
    """Plain-numpy inference equal to the sklearn pipeline: the same analyzers, vocabularies and
    idf weights, sublinear tf, L2 norm per vectorizer, then one gather of coefficient rows."""

    def __init__(self, model: TextModel) -> None:
        self.char_analyzer = model.char.build_analyzer()
        self.char_vocab = model.char.vocabulary_
        self.char_idf = model.char.idf_
        self.word_vocab = model.word.vocabulary_
        self.word_idf = model.word.idf_
        self.offset = len(self.char_vocab)
        self.names = list(model.char.get_feature_names_out()) + list(model.word.get_feature_names_out())
        self.heads: dict[str, tuple[np.ndarray, np.ndarray, list[str]]] = {}
        for head, clf in model.heads.items():
            coef, bias = clf.coef_, clf.intercept_
            if coef.shape[0] == 1:  # binary: margins for (negative, positive)
                coef = np.vstack([-coef[0], coef[0]])
                bias = np.array([-bias[0], bias[0]])
            self.heads[head] = (np.ascontiguousarray(coef.T), bias, [str(c) for c in clf.classes_])

    @staticmethod
    def _weights(counts: Counter, vocab: dict, idf: np.ndarray, offset: int = 0) -> tuple[list[int], np.ndarray]:
        idx: list[int] = []
        tf: list[int] = []
        get = vocab.get
        for term, n in counts.items():
            j = get(term)
            if j is not None:
                idx.append(j)
                tf.append(n)
        if not idx:
            return [], np.zeros(0)
        vals = (1.0 + np.log(np.asarray(tf, dtype=float))) * idf[idx]
        norm = np.sqrt((vals * vals).sum())
        return [j + offset for j in idx] if offset else idx, vals / norm if norm else vals

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        norm = normalise(text)
        ci, cv = self._weights(Counter(self.char_analyzer(norm)), self.char_vocab, self.char_idf)
        wi, wv = self._weights(Counter(_word_ngrams(words(norm))), self.word_vocab, self.word_idf, self.offset)
        return np.array(ci + wi, dtype=np.int64), np.concatenate([cv, wv])


def _identity(tokens):
    return tokens


def _word_ngrams(tokens: list[str]) -> list[str]:
    # Word bigrams joined with a unit separator so they never collide with a real word.
    return tokens + [f"{a}\x1f{b}" for a, b in itertools.pairwise(tokens)]


# -- data ------------------------------------------------------------------------------------------


def seed_examples() -> list[Example]:
    """The labelled seed set shipped with the project (synthetic; see data/README.md)."""
    text = resources.files("triage").joinpath(SEED_FILE).read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    return [Example(r["text"], {h: r[h] for h in HEADS if r.get(h)}) for r in rows]


def corpus_files() -> list[Path]:
    files = sorted(CORPUS_DIR.glob("items-*.jsonl"))
    if not files:
        raise FileNotFoundError(f"the triage corpus is missing: no items-*.jsonl in {CORPUS_DIR}")
    return files


def corpus_examples(split: str) -> list[Example]:
    """The corpus items of one split (`train`, `test` or `late`), labelled on every head."""
    if split not in SPLITS:
        raise ValueError(split)
    out: list[Example] = []
    for path in corpus_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            if item["split"] == split:
                out.append(Example(item["text"], {h: item[h] for h in HEADS}))
    return out


def shipped_examples() -> list[Example]:
    """What the shipped model learns from: the corpus's train split and the seed rows (relabelled
    to the labelling guide's convention, data/README.md). Never the test or late split."""
    return corpus_examples("train") + seed_examples()


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
        return {
            "macro_f1": round(self.macro_f1, 4),
            "accuracy": round(self.accuracy, 4),
            "per_class": {k: round(v, 4) for k, v in self.per_class.items()},
            "support": self.support,
        }


def score(y_true: Sequence[str], y_pred: Sequence[str]) -> Scores:
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    per_class = {
        k: v["f1-score"]
        for k, v in report.items()
        if isinstance(v, dict) and k not in ("macro avg", "weighted avg", "accuracy")
    }
    return Scores(
        f1_score(y_true, y_pred, average="macro", zero_division=0),
        accuracy_score(y_true, y_pred),
        per_class,
        len(y_true),
    )


def cross_validate(
    examples: Sequence[Example], head: str, *, folds: int = 5, seed: int = 0, make=TextModel
) -> Scores | None:
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
