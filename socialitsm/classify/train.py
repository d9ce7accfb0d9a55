"""Training the complaint model: data sources, fitting and cross-validation.

The shipped model is trained only on data whose licence allows it: TweetEval sentiment
(validation split; negative = complaint-like), VADER's rated tweets (MIT; negative =
complaint-like), our own IT-service posts in `data/own_posts.csv`, the train split of our
labelled workplace-IT corpus in `data/corpus/*.jsonl`, and agents' labels.
The ACL-2019 complaint set has no licence, so it serves only to cross-validate this
training pipeline (bench/classify.py).

Two models are fitted (see `model`): the fast one on n-grams and cues from every source, and
the decision head on the sentence encoder's view of the post plus the fast model's logit. The
head has two factors, each taught what it is told (`targets`):
- the complaint factor (a complaint at all, about anything) learns from the public sentiment
  sets (negative = complaint-like), our posts, the corpus's complaints and non-complaints about
  IT and its sarcasm about the rest of life; off-topic posts, of every mood, teach it nothing;
- the relevance factor (about a service this organisation runs) learns from our posts and the
  corpus: IT complaints, praise, questions and notices are about our IT, everyday life and other
  companies' outages are not, nor are the public tweets (at a low weight).
The decision, a small regression over the two factors' logits, learns from posts labelled for
the task itself (our posts, the corpus, agents' labels; public tweets as not complaints at a low
weight), from factors fitted without those posts. The fast logit the head reads is out of fold
too (each post scored by a fast model that did not see it), so it trusts the fast model as much
as it deserves on posts it has not seen.

The head's regularisation is not fixed by hand: each training chooses it from `HEAD_C_GRID` by
k-fold cross-validation over its own training posts (`tune_head`), scored by the decision's
macro-F1 on the posts labelled for the task, and records the choice and the grid's scores in the
model's metadata. The corpus's eval split is never read by training, so the figures measured on
it stay honest; in the benchmark's cross-validation each training fold tunes on itself alone.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse  # type: ignore[import-untyped]

from .catalogue import matcher_for
from .features import BUCKETS, Grams
from .model import (
    COMPLAINT_FEATURES,
    DENSE_FEATURES,
    HEAD_FEATURES,
    RELEVANCE_FEATURES,
    Factors,
    FloatArray,
    Head,
    save,
)
from .pipeline import head_matrix, prepare_many, understand

OWN_POSTS = Path(__file__).with_name("data") / "own_posts.csv"
CORPUS = Path(__file__).with_name("data") / "corpus"
SEED = 13
C = 10.0
MIN_DF = 2
# The head's regularisation is chosen at every training from this grid by cross-validation on
# the training posts themselves (`tune_head`), never by the corpus's eval split.
HEAD_C_GRID = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)
TUNING_FOLDS = 5
# Folds of the fast model's out-of-fold logits, which the head learns from.
INNER_FOLDS = 3
WEIGHTS = {"tweeteval": 1.0, "vader": 1.0, "own": 5.0, "corpus": 5.0, "feedback": 5.0}
# Sources labelled for "complaint about an IT service" rather than for sentiment; the head reads
# the others as not complaints, with this weight.
HEAD_SOURCES = frozenset({"own", "corpus", "feedback"})
PUBLIC_HEAD_WEIGHT = 0.3
# The decision's own regression over the two factors' logits is barely regularised: 3 inputs.
COMBINE_C = 1.0
# Per family of corpus post: (a complaint at all, about a service we run); None where the family
# says nothing about that factor (a joke may be about IT or not, everyday life in any mood).
FAMILY_TARGETS: dict[str, tuple[int | None, int | None]] = {
    "outage": (1, 1),
    "slowness": (1, 1),
    "sarcasm": (1, 1),
    "service_desk": (1, 1),
    "follow_up": (1, 1),
    "indirect_service": (1, 1),
    "praise": (0, 1),
    "question": (0, 1),
    "announcement": (0, 1),
    "job_post": (0, 1),
    "joke": (0, None),
    "sarcasm_not_it": (1, 0),
    "offtopic_food": (None, 0),
    "offtopic_home_tech": (None, 0),
    "offtopic_other_company_outage": (None, 0),
    "offtopic_outage_news": (None, 0),
    "offtopic_personal": (None, 0),
    "offtopic_sports": (None, 0),
    "offtopic_weather_commute": (None, 0),
}
_FAST_LOGIT = HEAD_FEATURES.index("fast_logit")
_COMPLAINT_COLUMNS = np.array([HEAD_FEATURES.index(name) for name in COMPLAINT_FEATURES])
_RELEVANCE_COLUMNS = np.array([HEAD_FEATURES.index(name) for name in RELEVANCE_FEATURES])
_NAMED_HEAD = HEAD_FEATURES.index("encoder_0")
HEAD_EMPHASIS = 3.0
_LABELS = {"complaint": 1, "not_complaint": 0}
_SPLITS = ("train", "eval")
_SENTIMENT_LABEL = {"negative": 1, "neutral": 0, "positive": 0}

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: int  # 1 complaint, 0 not a complaint
    source: str
    weight: float = 1.0
    lang: str | None = None
    service: str | None = None
    family: str = ""


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


class CorpusError(ValueError):
    """A corpus line that is not a well-formed labelled post."""


def corpus_examples(split: str = "train", folder: Path = CORPUS) -> list[Example]:
    """The labelled workplace-IT corpus (one JSON object per line in `folder/*.jsonl`) of one split.

    Each line holds text, lang, label (complaint | not_complaint), service (a slug or null),
    family and split (train | eval). A malformed line raises CorpusError naming file and line.
    No folder gives no examples.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {', '.join(_SPLITS)}")
    examples: list[Example] = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                row = _corpus_row(line, f"{path.name}:{number}")
                if row["split"] == split:
                    examples.append(
                        Example(
                            row["text"],
                            _LABELS[row["label"]],
                            "corpus",
                            WEIGHTS["corpus"],
                            row["lang"] or None,
                            row["service"],
                            row["family"],
                        )
                    )
    return examples


def _corpus_row(line: str, where: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except ValueError as exc:
        raise CorpusError(f"{where}: not JSON ({exc})") from exc
    if not isinstance(row, dict):
        raise CorpusError(f"{where}: not a JSON object")
    text, label, split = row.get("text"), row.get("label"), row.get("split")
    service, lang, family = row.get("service"), row.get("lang"), row.get("family", "")
    if not isinstance(text, str) or not text.strip():
        raise CorpusError(f"{where}: text must be a non-empty string")
    if label not in _LABELS:
        raise CorpusError(f"{where}: label must be complaint or not_complaint, not {label!r}")
    if split not in _SPLITS:
        raise CorpusError(f"{where}: split must be train or eval, not {split!r}")
    if service is not None and not isinstance(service, str):
        raise CorpusError(f"{where}: service must be a slug or null")
    if lang is not None and not isinstance(lang, str):
        raise CorpusError(f"{where}: lang must be a language code")
    return {
        "text": text,
        "label": label,
        "split": split,
        "service": service or None,
        "lang": lang,
        "family": family if isinstance(family, str) else "",
    }


def public_examples(data_dir: Path) -> list[Example]:
    """The public sets whose licence allows training a shipped model."""
    return [*tweeteval_examples(data_dir), *vader_examples(data_dir)]


@dataclass(frozen=True, slots=True)
class Corpus:
    """Featurised posts: n-gram occurrences, dense features and the head's inputs (with the
    fast model's logit still to be filled in), ready to be split and fitted."""

    words: Grams
    chars: Grams
    dense: FloatArray
    head: FloatArray
    size: int

    def subset(self, rows: npt.NDArray[np.int64]) -> Corpus:
        remap = np.full(self.size, -1, dtype=np.int64)
        remap[rows] = np.arange(len(rows))
        return Corpus(_take(self.words, remap), _take(self.chars, remap), self.dense[rows], self.head[rows], len(rows))


def _take(grams: Grams, remap: npt.NDArray[np.int64]) -> Grams:
    keep = remap[grams.doc] >= 0
    return Grams(remap[grams.doc[keep]], grams.bucket[keep], grams.token[keep])


def featurise(
    texts: Sequence[str],
    progress: Progress | None = None,
    chunk: int = 2000,
    languages: Sequence[str | None] = (),
) -> Corpus:
    # The model does not read the service: catalogues differ between deployments. The head
    # reads the similarity to the default catalogue (pipeline.understand).
    matcher = matcher_for(())
    words: list[Grams] = []
    chars: list[Grams] = []
    dense: list[FloatArray] = []
    head: list[FloatArray] = []
    for start in range(0, len(texts), chunk):
        prepared = prepare_many(texts[start : start + chunk], matcher, languages[start : start + chunk])
        words.append(_shift(prepared.grams.words, start))
        chars.append(_shift(prepared.grams.chars, start))
        dense.append(prepared.dense)
        meaning = understand(prepared.posts, ())
        head.append(head_matrix(prepared, meaning, np.zeros(len(prepared.posts), dtype=np.float32)))
        if progress is not None:
            progress(len(prepared.dense))
    if not dense:
        nothing = np.zeros((0, len(DENSE_FEATURES)), dtype=np.float32)
        return Corpus(_empty(), _empty(), nothing, np.zeros((0, len(HEAD_FEATURES)), dtype=np.float32), 0)
    return Corpus(_concat(words), _concat(chars), np.concatenate(dense), np.concatenate(head), len(texts))


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
class Tuning:
    """The head's regularisation chosen by cross-validation on the training posts (`tune_head`)."""

    head_c: float
    scores: dict[float, float]  # per value of the grid, the pooled out-of-fold macro-F1
    folds: int
    posts: int  # posts whose decision was scored

    def record(self) -> dict[str, Any]:
        return {
            "head_c": self.head_c,
            "macro_f1": {repr(c): round(score, 6) for c, score in self.scores.items()},
            "folds": self.folds,
            "posts": self.posts,
        }


@dataclass(frozen=True, slots=True)
class Fitted:
    arrays: dict[str, npt.NDArray[Any]]
    tuning: Tuning | None = None

    def fast_logits(self, corpus: Corpus) -> npt.NDArray[np.float64]:
        """The fast model's scores of posts outside training, computed like `model.Model.score` does."""
        total = np.full(corpus.size, float(self.arrays["bias"]), dtype=np.float64)
        for name, grams in (("word", corpus.words), ("char", corpus.chars)):
            vocabulary = _Vocabulary(self.arrays[f"{name}_index"], self.arrays[f"{name}_idf"])
            total += vocabulary.matrix(grams, corpus.size) @ self.arrays[f"{name}_coef"].astype(np.float64)
        return total + corpus.dense.astype(np.float64) @ self.arrays["dense_coef"].astype(np.float64)

    def logits(self, corpus: Corpus, *, encoder: bool = True) -> npt.NDArray[np.float64]:
        """The decision's scores (the head's, or the fast model's alone with encoder=False)."""
        if not encoder:
            return self.fast_logits(corpus)
        return self.factors(corpus).decision.astype(np.float64)

    def factors(self, corpus: Corpus) -> Factors:
        """The head's two factors and its decision, as logits."""
        features = _with_fast(corpus.head, self.fast_logits(corpus))
        return Head.from_arrays(self.arrays).factors(features)[0]


def _with_fast(head: FloatArray, fast: npt.NDArray[np.floating]) -> FloatArray:
    # The same cap as pipeline.head_matrix applies at run time.
    features = head.copy()
    features[:, _FAST_LOGIT] = np.clip(fast, -8.0, 8.0)
    return features


def fit_fast(
    corpus: Corpus,
    labels: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64] | None = None,
    *,
    c: float = C,
    min_df: int = MIN_DF,
) -> Fitted:
    """The fast model alone: logistic regression with balanced classes; deterministic (lbfgs)."""
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


def out_of_fold_fast(
    corpus: Corpus,
    labels: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64] | None,
    folds: int = INNER_FOLDS,
) -> npt.NDArray[np.float64]:
    """The fast model's logit of every post, each from a fast model fitted without it."""
    order = np.random.default_rng(SEED).permutation(corpus.size)
    fold_of = np.empty(corpus.size, dtype=np.int64)
    fold_of[order] = np.arange(corpus.size) % folds
    logits = np.zeros(corpus.size, dtype=np.float64)
    for fold in range(folds):
        test = np.flatnonzero(fold_of == fold)
        rest = np.flatnonzero(fold_of != fold)
        if not len(test):
            continue
        if len(set(labels[rest].tolist())) < 2:
            raise ValueError("training needs more posts of each class (complaint and not a complaint)")
        fitted = fit_fast(corpus.subset(rest), labels[rest], None if weights is None else weights[rest])
        logits[test] = fitted.fast_logits(corpus.subset(test))
    return logits


Target = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]


@dataclass(frozen=True, slots=True)
class Targets:
    """What the head learns, each as (labels, weights); a weight of 0 leaves a post out."""

    complaint: Target  # a complaint at all, about anything
    relevance: Target  # about a service this organisation runs
    decision: Target  # a complaint about a service this organisation runs
    # The posts labelled for the decision itself, which tuning scores; None: every post.
    scored: npt.NDArray[np.bool_] | None = None


def fit(
    corpus: Corpus,
    labels: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64] | None = None,
    targets: Targets | None = None,
    *,
    c: float = C,
    head_c: float | None = None,
    min_df: int = MIN_DF,
) -> Fitted:
    """The fast model on every post, then the head from the encoder's features and the fast
    model's out-of-fold logits: its two factors and their combination, with `targets` (see
    `head_targets`) when given, else every target the fast model's labels. Without `head_c`, the
    head's regularisation is chosen by cross-validation on these posts (`tune_head`)."""
    fast = fit_fast(corpus, labels, weights, c=c, min_df=min_df)
    if targets is None:
        plain = (labels, np.ones(corpus.size) if weights is None else weights)
        targets = Targets(plain, plain, plain)
    if len(set(targets.decision[0][targets.decision[1] > 0].tolist())) < 2:
        raise ValueError("the decision head needs IT-labelled posts of both classes (complaint and not a complaint)")
    # A factor told only one class (our posts alone are all about IT) learns the decision's labels.
    told = [
        target if len(set(target[0][target[1] > 0].tolist())) == 2 else targets.decision
        for target in (targets.complaint, targets.relevance)
    ]
    targets = Targets(told[0], told[1], targets.decision, targets.scored)
    features = _with_fast(corpus.head, out_of_fold_fast(corpus, labels, weights)).astype(np.float64)
    rows = (targets.complaint[1] > 0) | (targets.relevance[1] > 0) | (targets.decision[1] > 0)
    mean = features[rows].mean(axis=0)
    scale = features[rows].std(axis=0)
    scale[scale < 1e-6] = 1.0
    # The few named features (similarities, the fast logit, cues) are penalised less than each
    # of the encoder's hundreds of dimensions, so together the latter do not drown them.
    scale[:_NAMED_HEAD] /= HEAD_EMPHASIS
    scaled = (features - mean) / scale
    tuning = None
    if head_c is None:
        tuning = tune_head(scaled, targets)
        head_c = tuning.head_c
    return Fitted(
        {
            **fast.arrays,
            "head_mean": mean.astype(np.float32),
            "head_scale": scale.astype(np.float32),
            **_fit_head(scaled, targets, head_c),
        },
        tuning,
    )


def _fit_head(scaled: npt.NDArray[np.float64], targets: Targets, head_c: float) -> dict[str, FloatArray]:
    """The two factors on standardised head features, and the decision over their logits."""
    # The decision learns from factors that did not see the post, as it meets them at run time.
    size = len(scaled)
    order = np.random.default_rng(SEED).permutation(size)
    fold_of = np.empty(size, dtype=np.int64)
    fold_of[order] = np.arange(size) % INNER_FOLDS
    unseen = np.zeros((size, 2), dtype=np.float64)
    for fold in range(INNER_FOLDS):
        rest, test = fold_of != fold, fold_of == fold
        for k, (columns, target) in enumerate(
            ((_COMPLAINT_COLUMNS, targets.complaint), (_RELEVANCE_COLUMNS, targets.relevance))
        ):
            coef, bias = _factor(scaled[rest], columns, (target[0][rest], target[1][rest]), head_c)
            unseen[test, k] = scaled[test] @ coef + bias
    complaint_coef, complaint_bias = _factor(scaled, _COMPLAINT_COLUMNS, targets.complaint, head_c)
    relevance_coef, relevance_bias = _factor(scaled, _RELEVANCE_COLUMNS, targets.relevance, head_c)
    combined = np.column_stack([unseen, unseen.min(axis=1)])
    combine_coef, combine_bias = _logistic(combined, targets.decision, COMBINE_C)
    return {
        "complaint_coef": complaint_coef.astype(np.float32),
        "complaint_bias": np.array(complaint_bias, dtype=np.float32),
        "relevance_coef": relevance_coef.astype(np.float32),
        "relevance_bias": np.array(relevance_bias, dtype=np.float32),
        "combine_coef": combine_coef.astype(np.float32),
        "combine_bias": np.array(combine_bias, dtype=np.float32),
    }


def tune_head(
    scaled: npt.NDArray[np.float64],
    targets: Targets,
    grid: Sequence[float] = HEAD_C_GRID,
    folds: int = TUNING_FOLDS,
) -> Tuning:
    """The head's C chosen by k-fold cross-validation over the posts it is given: for each value
    of the grid, the head is fitted on k-1 folds and decides the posts of the k-th that are
    labelled for the decision (`targets.scored`); the value with the best macro-F1 over all
    folds' decisions wins, the smallest C (the strongest regularisation) on a tie.

    It sees only the training posts; the fast logits among the features are out of fold already.
    """
    from sklearn.metrics import f1_score  # type: ignore[import-untyped]

    size = len(scaled)
    scored = np.ones(size, dtype=bool) if targets.scored is None else targets.scored
    scored = scored & (targets.decision[1] > 0)
    order = np.random.default_rng(SEED + 1).permutation(size)
    fold_of = np.empty(size, dtype=np.int64)
    fold_of[order] = np.arange(size) % folds
    decisions = np.zeros((len(grid), size), dtype=np.float64)
    for fold in range(folds):
        rest, test = np.flatnonzero(fold_of != fold), np.flatnonzero((fold_of == fold) & scored)
        if not len(test):
            continue
        part = _subset_targets(targets, rest)
        for k, head_c in enumerate(grid):
            arrays = _fit_head(scaled[rest], part, head_c)
            decisions[k, test] = _decision(arrays, scaled[test])
    wanted = targets.decision[0][scored]
    scores = {
        head_c: float(f1_score(wanted, (decisions[k, scored] >= 0).astype(np.int64), average="macro"))
        for k, head_c in enumerate(grid)
    }
    best = max(scores.values())
    chosen = min(head_c for head_c, score in scores.items() if score == best)
    return Tuning(chosen, scores, folds, int(scored.sum()))


def _subset_targets(targets: Targets, rows: npt.NDArray[np.int64]) -> Targets:
    def take(target: Target) -> Target:
        return target[0][rows], target[1][rows]

    scored = None if targets.scored is None else targets.scored[rows]
    return Targets(take(targets.complaint), take(targets.relevance), take(targets.decision), scored)


def _decision(arrays: dict[str, FloatArray], scaled: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The head's decision logits, as `model.Head` computes them, on already standardised features."""
    complaint = scaled @ arrays["complaint_coef"].astype(np.float64) + float(arrays["complaint_bias"])
    relevance = scaled @ arrays["relevance_coef"].astype(np.float64) + float(arrays["relevance_bias"])
    combine = arrays["combine_coef"].astype(np.float64)
    least = np.minimum(complaint, relevance)
    return float(arrays["combine_bias"]) + combine[0] * complaint + combine[1] * relevance + combine[2] * least


def _factor(
    scaled: npt.NDArray[np.float64], columns: npt.NDArray[np.int64], target: Target, c: float
) -> tuple[npt.NDArray[np.float64], float]:
    """One factor over its own columns; the coefficients of the others are 0."""
    coef, bias = _logistic(scaled[:, columns], target, c)
    full = np.zeros(scaled.shape[1], dtype=np.float64)
    full[columns] = coef
    return full, bias


def _logistic(features: npt.NDArray[np.float64], target: Target, c: float) -> tuple[npt.NDArray[np.float64], float]:
    """Logistic regression on the posts of weight > 0, classes balanced by weight, not by count:
    many public tweets at a low weight must not make each IT-labelled post count for less."""
    from sklearn.linear_model import LogisticRegression

    labels, weights = target
    rows = weights > 0
    wanted, chosen = labels[rows], weights[rows]
    balanced = chosen.copy()
    for label in (0, 1):
        balanced[wanted == label] *= chosen.sum() / (2.0 * chosen[wanted == label].sum())
    model = LogisticRegression(C=c, max_iter=5000, random_state=SEED)
    model.fit(features[rows], wanted, sample_weight=balanced)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def head_targets(examples: Sequence[Example]) -> Targets:
    """The head's labels and weights per factor and for the decision (see the module's docstring)."""
    complaint: list[tuple[int, float]] = []
    relevance: list[tuple[int, float]] = []
    decision: list[tuple[int, float]] = []
    scored = np.array([e.source in HEAD_SOURCES for e in examples], dtype=bool)
    for e in examples:
        if e.source not in HEAD_SOURCES:
            complaint.append((e.label, e.weight))
            relevance.append((0, PUBLIC_HEAD_WEIGHT))
            decision.append((0, PUBLIC_HEAD_WEIGHT))
            continue
        decision.append((e.label, e.weight))
        if e.source == "own":
            told: tuple[int | None, int | None] = (e.label, 1)
        elif e.source == "feedback":
            # An agent's "not a complaint" does not say which factor failed.
            told = (1, 1) if e.label else (None, None)
        else:
            told = FAMILY_TARGETS.get(e.family, (e.label, e.label))
        for target, value in zip((complaint, relevance), told, strict=True):
            target.append((0, 0.0) if value is None else (value, e.weight))
    return Targets(_arrays(complaint), _arrays(relevance), _arrays(decision), scored)


def _arrays(pairs: list[tuple[int, float]]) -> Target:
    return np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.float64)


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
    fitted = fit(corpus, labels, weights, head_targets(examples))
    assert fitted.tuning is not None
    meta = {
        "command": command,
        "seed": SEED,
        "c": C,
        "head_c": fitted.tuning.head_c,
        "head_tuning": fitted.tuning.record(),
        "combine_c": COMBINE_C,
        "head_emphasis": HEAD_EMPHASIS,
        "head_sources": sorted(HEAD_SOURCES),
        "public_head_weight": PUBLIC_HEAD_WEIGHT,
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
    *,
    encoder: bool = True,
) -> npt.NDArray[np.float64]:
    """Out-of-fold complaint probabilities: fold k is scored by a model fitted on the others
    (the whole pipeline, fast model and head; the fast model alone with encoder=False)."""
    probabilities = np.zeros(corpus.size, dtype=np.float64)
    for fold in np.unique(folds):
        test = np.flatnonzero(folds == fold)
        train_rows = np.flatnonzero(folds != fold)
        part = corpus.subset(train_rows)
        fitted = fit(part, labels[train_rows]) if encoder else fit_fast(part, labels[train_rows])
        probabilities[test] = 1.0 / (1.0 + np.exp(-fitted.logits(corpus.subset(test), encoder=encoder)))
        if progress is not None:
            progress(1)
    return probabilities
