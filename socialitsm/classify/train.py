"""Training the complaint model: data sources, fitting and cross-validation.

The shipped model is trained only on data whose licence allows it: TweetEval sentiment
(validation split; negative = complaint-like), VADER's rated tweets (MIT; negative =
complaint-like), our own IT-service posts in `data/own_posts.csv`, and agents' labels.
The ACL-2019 complaint set has no licence, so it serves only to cross-validate this
training pipeline (bench/classify.py).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse  # type: ignore[import-untyped]

from .catalogue import matcher_for
from .features import BUCKETS, Grams
from .model import DENSE_FEATURES, FloatArray, save
from .pipeline import prepare_many

OWN_POSTS = Path(__file__).with_name("data") / "own_posts.csv"
SEED = 13
C = 10.0
MIN_DF = 2
WEIGHTS = {"tweeteval": 1.0, "vader": 1.0, "own": 5.0, "feedback": 5.0}
_SENTIMENT_LABEL = {"negative": 1, "neutral": 0, "positive": 0}

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: int  # 1 complaint, 0 not a complaint
    source: str
    weight: float = 1.0
    lang: str | None = None


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def tweeteval_examples(data_dir: Path) -> list[Example]:
    """TweetEval sentiment validation split; the test split is kept for the benchmark."""
    rows = _rows(data_dir / "tweeteval-sentiment" / "val.csv")
    return [
        Example(r["text"], _SENTIMENT_LABEL[r["label_name"]], "tweeteval", WEIGHTS["tweeteval"], "en") for r in rows
    ]


def vader_examples(data_dir: Path) -> list[Example]:
    rows = _rows(data_dir / "vader-tweets-hutto2014" / "tweets.csv")
    return [Example(r["text"], _SENTIMENT_LABEL[r["label"]], "vader", WEIGHTS["vader"], "en") for r in rows]


def own_examples(path: Path = OWN_POSTS) -> list[Example]:
    return [Example(r["text"], int(r["label"]), "own", WEIGHTS["own"], r["lang"]) for r in _rows(path)]


def public_examples(data_dir: Path) -> list[Example]:
    """The public sets whose licence allows training a shipped model."""
    return [*tweeteval_examples(data_dir), *vader_examples(data_dir)]


@dataclass(frozen=True, slots=True)
class Corpus:
    """Featurised posts: n-gram occurrences and dense features, ready to be split and fitted."""

    words: Grams
    chars: Grams
    dense: FloatArray
    size: int

    def subset(self, rows: npt.NDArray[np.int64]) -> Corpus:
        remap = np.full(self.size, -1, dtype=np.int64)
        remap[rows] = np.arange(len(rows))
        return Corpus(_take(self.words, remap), _take(self.chars, remap), self.dense[rows], len(rows))


def _take(grams: Grams, remap: npt.NDArray[np.int64]) -> Grams:
    keep = remap[grams.doc] >= 0
    return Grams(remap[grams.doc[keep]], grams.bucket[keep], grams.token[keep])


def featurise(
    texts: Sequence[str],
    progress: Progress | None = None,
    chunk: int = 2000,
    languages: Sequence[str | None] = (),
) -> Corpus:
    # The model does not read the service: catalogues differ between deployments.
    matcher = matcher_for(())
    words: list[Grams] = []
    chars: list[Grams] = []
    dense: list[FloatArray] = []
    for start in range(0, len(texts), chunk):
        prepared = prepare_many(texts[start : start + chunk], matcher, languages[start : start + chunk])
        words.append(_shift(prepared.grams.words, start))
        chars.append(_shift(prepared.grams.chars, start))
        dense.append(prepared.dense)
        if progress is not None:
            progress(len(prepared.dense))
    if not dense:
        return Corpus(_empty(), _empty(), np.zeros((0, len(DENSE_FEATURES)), dtype=np.float32), 0)
    return Corpus(_concat(words), _concat(chars), np.concatenate(dense), len(texts))


def _empty() -> Grams:
    nothing = np.zeros(0, dtype=np.int64)
    return Grams(nothing, nothing, nothing)


def _shift(grams: Grams, offset: int) -> Grams:
    # Token indices are per batch and only matter for reasons, never for training.
    return Grams(grams.doc + offset, grams.bucket, grams.token)


def _concat(parts: list[Grams]) -> Grams:
    return Grams(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("doc", "bucket", "token")))


@dataclass(frozen=True, slots=True)
class _Vocabulary:
    index: npt.NDArray[np.int64]  # kept buckets, ascending
    idf: FloatArray

    @classmethod
    def learn(cls, grams: Grams, size: int, min_df: int) -> _Vocabulary:
        pairs = np.unique(grams.doc * BUCKETS + grams.bucket)
        df = np.bincount(pairs % BUCKETS, minlength=BUCKETS)
        index = np.flatnonzero(df >= min_df)
        idf = (np.log((1.0 + size) / (1.0 + df[index])) + 1.0).astype(np.float32)
        return cls(index.astype(np.int64), idf)

    def matrix(self, grams: Grams, size: int) -> sparse.csr_matrix:
        """Occurrences weighted by idf, l2-normalised per post as `model.Block` does at run time."""
        column = np.full(BUCKETS, -1, dtype=np.int64)
        column[self.index] = np.arange(len(self.index))
        cols = column[grams.bucket]
        keep = cols >= 0
        docs, cols = grams.doc[keep], cols[keep]
        idf = self.idf[cols].astype(np.float64)
        norms = np.sqrt(np.bincount(docs, weights=idf * idf, minlength=size))
        norms[norms == 0] = 1.0
        values = idf / norms[docs]
        matrix = sparse.csr_matrix((values, (docs, cols)), shape=(size, len(self.index)))
        matrix.sum_duplicates()
        return matrix


@dataclass(frozen=True, slots=True)
class Fitted:
    arrays: dict[str, npt.NDArray[Any]]

    def logits(self, corpus: Corpus) -> npt.NDArray[np.float64]:
        """Scores of posts outside training, computed like `model.Model.score` does."""
        total = np.full(corpus.size, float(self.arrays["bias"]), dtype=np.float64)
        for name, grams in (("word", corpus.words), ("char", corpus.chars)):
            vocabulary = _Vocabulary(self.arrays[f"{name}_index"], self.arrays[f"{name}_idf"])
            total += vocabulary.matrix(grams, corpus.size) @ self.arrays[f"{name}_coef"].astype(np.float64)
        return total + corpus.dense.astype(np.float64) @ self.arrays["dense_coef"].astype(np.float64)


def fit(
    corpus: Corpus,
    labels: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64] | None = None,
    *,
    c: float = C,
    min_df: int = MIN_DF,
) -> Fitted:
    """Logistic regression with balanced classes; deterministic (lbfgs, fixed inputs)."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    if len(set(labels.tolist())) < 2:
        raise ValueError("training needs posts of both classes (complaint and not a complaint)")
    words = _Vocabulary.learn(corpus.words, corpus.size, min_df)
    chars = _Vocabulary.learn(corpus.chars, corpus.size, min_df)
    matrix = sparse.hstack(
        [words.matrix(corpus.words, corpus.size), chars.matrix(corpus.chars, corpus.size), corpus.dense]
    ).tocsr()
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=SEED)
    model.fit(matrix, labels, sample_weight=weights)
    coef = model.coef_[0].astype(np.float32)
    split = (len(words.index), len(words.index) + len(chars.index))
    return Fitted(
        {
            "word_index": words.index.astype(np.int32),
            "word_idf": words.idf,
            "word_coef": coef[: split[0]],
            "char_index": chars.index.astype(np.int32),
            "char_idf": chars.idf,
            "char_coef": coef[split[0] : split[1]],
            "dense_coef": coef[split[1] :],
            "bias": np.array(model.intercept_[0], dtype=np.float32),
        }
    )


def train(
    examples: Sequence[Example],
    output: Path,
    *,
    command: str = "",
    progress: Progress | None = None,
    stage: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit on `examples` and write the model to `output`; returns the metadata written.

    `progress` hears of every featurised post, `stage` of each step ("featurising", "fitting").
    """
    if stage is not None:
        stage("featurising")
    corpus = featurise([e.text for e in examples], progress, languages=[e.lang for e in examples])
    labels = np.array([e.label for e in examples], dtype=np.int64)
    weights = np.array([e.weight for e in examples], dtype=np.float64)
    if stage is not None:
        stage("fitting")
    fitted = fit(corpus, labels, weights)
    meta = {
        "command": command,
        "seed": SEED,
        "c": C,
        "min_df": MIN_DF,
        "examples": _counts(examples),
        "data_sha256": _digest(examples),
    }
    save(output, fitted.arrays, meta)
    return meta


def _counts(examples: Iterable[Example]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for example in examples:
        per = counts.setdefault(example.source, {"complaint": 0, "not_complaint": 0})
        per["complaint" if example.label else "not_complaint"] += 1
    return counts


def _digest(examples: Iterable[Example]) -> str:
    digest = hashlib.sha256()
    for example in examples:
        digest.update(f"{example.label}\t{example.weight}\t{example.lang}\t{example.text}\n".encode())
    return digest.hexdigest()


def cross_validate(
    corpus: Corpus,
    labels: npt.NDArray[np.int64],
    folds: npt.NDArray[np.int64],
    progress: Progress | None = None,
) -> npt.NDArray[np.float64]:
    """Out-of-fold complaint probabilities: fold k is scored by a model fitted on the others."""
    probabilities = np.zeros(corpus.size, dtype=np.float64)
    for fold in np.unique(folds):
        test = np.flatnonzero(folds == fold)
        fitted = fit(corpus.subset(np.flatnonzero(folds != fold)), labels[folds != fold])
        probabilities[test] = 1.0 / (1.0 + np.exp(-fitted.logits(corpus.subset(test))))
        if progress is not None:
            progress(1)
    return probabilities
