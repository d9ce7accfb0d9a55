"""Complaint classifier benchmark: quality of the training pipeline and the shipped model, and speed.

    python bench/classify.py [--data ../shared/data] [--skip-cv] [--posts 20000] [--encoder MODEL_DIR]

Prints:
- 10-fold cross-validation of the training pipeline (features + logistic regression) on the
  ACL-2019 complaint set (Preotiuc-Pietro et al.), fitted on 9 folds and scored on the 10th,
  with the set's own `cv_fold` column: macro-F1, accuracy and ROC AUC overall and on its
  software, electronics and services domains. The set has no licence, so it is used only here.
- The shipped model (trained without that set) on the whole ACL-2019 set, next to the
  TextBlob < 0 and VADER < 0 baselines.
- Macro recall of the verdict's sentiment on the TweetEval sentiment test set (negative below
  -0.05, positive above 0.05), next to VADER's own compound score.
- Posts per second of CPU time on one core (the process is pinned to one CPU and BLAS to one
  thread), in batches of 500 and one post at a time, on customer-support tweets (TWCS airlines).
- With --encoder DIR (a sentence-transformers model on disk, e.g. all-mpnet-base-v2; needs torch
  and sentence-transformers, which SocialITSM does not install): the same cross-validation with
  that transformer's sentence vectors added to the features, and the transformer's own speed.
  It shows how much contextual meaning adds on this set, and what it costs per post.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# One BLAS thread: the speed figures are per core. Must be set before numpy loads.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sklearn.metrics import accuracy_score, f1_score, recall_score, roc_auc_score  # noqa: E402

from socialitsm.classify import train, verdict, verdict_many  # noqa: E402
from socialitsm.classify.model import active  # noqa: E402

IT_DOMAINS = ("software", "electronics", "services")
BATCH = 500


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def macro_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(f1_score(labels, predicted, average="macro"))


def cross_validation(data: list[dict[str, str]], encoder: Path | None = None) -> None:
    texts = [r["text"] for r in data]
    labels = np.array([int(r["label"]) for r in data])
    folds = np.array([int(r["cv_fold"]) for r in data])
    domains = np.array([r["domain"] for r in data])
    started = time.perf_counter()
    corpus = train.featurise(texts)
    probabilities = train.cross_validate(corpus, labels, folds)
    took = time.perf_counter() - started
    print(f"10-fold CV of the training pipeline on ACL-2019 ({len(texts)} tweets, {took:.0f} s)")
    cv_table(labels, probabilities, domains)
    if encoder is not None:
        # The same pipeline with a transformer's sentence vectors as extra features: how far
        # contextual meaning goes on this set, and what it would cost per post.
        vectors = encode(encoder, texts)
        wider = train.Corpus(corpus.words, corpus.chars, np.hstack([corpus.dense, vectors]), corpus.size)
        print(f"The same, plus sentence vectors from {encoder} (not shipped: a transformer per post)")
        cv_table(labels, train.cross_validate(wider, labels, folds), domains)


def cv_table(labels: np.ndarray, probabilities: np.ndarray, domains: np.ndarray) -> None:
    predicted = (probabilities >= 0.5).astype(int)
    print(f"  {'subset':<22} {'n':>5} {'macro-F1':>9} {'accuracy':>9} {'AUC':>7}")
    subsets = [("all", np.ones(len(labels), dtype=bool)), ("IT (3 domains)", np.isin(domains, IT_DOMAINS))]
    subsets += [(name, domains == name) for name in IT_DOMAINS]
    for name, mask in subsets:
        f1 = macro_f1(labels[mask], predicted[mask])
        accuracy = accuracy_score(labels[mask], predicted[mask])
        auc = roc_auc_score(labels[mask], probabilities[mask])
        print(f"  {name:<22} {mask.sum():>5} {f1:>9.4f} {accuracy:>9.4f} {auc:>7.4f}")


def encode(encoder: Path, texts: list[str]) -> np.ndarray:
    """Sentence vectors from a local sentence-transformers model (needs torch), and its speed."""
    import torch  # type: ignore[import-not-found]
    from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]

    torch.set_num_threads(1)
    model = SentenceTransformer(str(encoder), device="cpu")
    sample = texts[:500]
    started = time.process_time()
    model.encode(sample, batch_size=64)
    rate = len(sample) / (time.process_time() - started)
    print(f"  {encoder} on one core: {rate:.0f} posts/s in batches of 64")
    return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True), dtype=np.float32)


def shipped_on_acl(data: list[dict[str, str]]) -> None:
    from textblob import TextBlob
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    texts = [r["text"] for r in data]
    labels = np.array([int(r["label"]) for r in data])
    verdicts = verdict_many([(text, "en") for text in texts])
    scores = np.array([v.score for v in verdicts])
    vader = SentimentIntensityAnalyzer()
    baselines = {
        "TextBlob polarity < 0": np.array([TextBlob(t).sentiment.polarity < 0 for t in texts], dtype=int),
        "VADER compound < 0": np.array([vader.polarity_scores(t)["compound"] < 0 for t in texts], dtype=int),
    }
    print("Shipped model (trained on TweetEval val, VADER tweets, own posts) on the whole ACL-2019 set")
    print(
        f"  shipped model          macro-F1 {macro_f1(labels, (scores >= 0.5).astype(int)):.4f}"
        f"  AUC {roc_auc_score(labels, scores):.4f}"
    )
    for name, predicted in baselines.items():
        print(f"  {name:<22} macro-F1 {macro_f1(labels, predicted):.4f}")


def sentiment_recall(data: list[dict[str, str]]) -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    texts = [r["text"] for r in data]
    labels = np.array([int(r["label"]) for r in data])  # 0 negative, 1 neutral, 2 positive

    def classes(values: Sequence[float]) -> np.ndarray:
        array = np.asarray(values)
        return np.where(array < -0.05, 0, np.where(array > 0.05, 2, 1))

    ours = classes([v.sentiment for v in verdict_many([(t, "en") for t in texts])])
    vader = SentimentIntensityAnalyzer()
    reference = classes([vader.polarity_scores(t)["compound"] for t in texts])
    print(f"TweetEval sentiment test ({len(texts)} tweets), macro recall")
    print(f"  verdict sentiment      {recall_score(labels, ours, average='macro'):.4f}")
    print(f"  VADER compound         {recall_score(labels, reference, average='macro'):.4f}")


def speed(texts: list[str]) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    pairs = [(text, "en") for text in texts]
    verdict_many(pairs[:BATCH])  # loads the model and the lexicons

    def batches() -> None:
        for start in range(0, len(pairs), BATCH):
            verdict_many(pairs[start : start + BATCH])

    singles = pairs[: max(1, len(pairs) // 5)]

    def one_by_one() -> None:
        for text, lang in singles:
            verdict(text, lang)

    print(f"Speed on one core, CPU time, best of 5 ({len(pairs)} customer-support tweets)")
    print(f"  batches of {BATCH:<10} {best_rate(batches, len(pairs)):>8.0f} posts/s")
    print(f"  one post at a time     {best_rate(one_by_one, len(singles)):>8.0f} posts/s")


def best_rate(run: Callable[[], None], count: int) -> float:
    # CPU time of this process, so other work on a shared machine does not count against it.
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--skip-cv", action="store_true", help="skip the 10-fold cross-validation (slowest part)")
    parser.add_argument("--posts", type=int, default=20_000, help="posts for the speed test")
    parser.add_argument(
        "--encoder",
        type=Path,
        help="a local sentence-transformers model folder (needs torch): adds its sentence vectors to the CV",
    )
    args = parser.parse_args()
    os.environ["SOCIALITSM_MODEL_PATH"] = ""  # the shipped model, never a locally retrained one
    active.reset()
    acl = rows(args.data / "complaints-preotiuc2019" / "complaints.csv")
    if not args.skip_cv:
        cross_validation(acl, args.encoder)
    shipped_on_acl(acl)
    sentiment_recall(rows(args.data / "tweeteval-sentiment" / "test.csv"))
    support = rows(args.data / "twcs-airlines-intents-asapp" / "unlabelled_first_utterances.csv")
    speed([r["text"] for r in support[: args.posts]])


if __name__ == "__main__":
    main()
