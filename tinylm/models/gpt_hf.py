"""Reading and writing GPT-2 checkpoints in Hugging Face's format (``config.json`` + ``model.safetensors``).

Differences between the two layouts, all handled here and nowhere else:

* GPT-2 stores its projections as ``Conv1D`` with weight (in, out); tinylm's ``Linear`` is (out, in),
  as PyTorch's, so ``c_attn``, ``c_proj`` and ``c_fc`` weights are transposed on the way in and out.
* The LM head is tied to ``transformer.wte.weight``: ``lm_head.weight`` may be absent from the file
  (transformers drops shared tensors) or present and equal; it is never a separate parameter here.
* Files from the original release name parameters without the ``transformer.`` prefix; both load.
* Buffers ``attn.bias`` / ``attn.masked_bias`` (the causal mask of older versions) are ignored.

No code is executed and nothing is pickled: the weights come through tinylm.io's safetensors reader.
"""
from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from tinylm.backend import to_numpy
from tinylm.io.checkpoint import load as load_safetensors, save as save_safetensors

__all__ = ["load_gpt2", "save_gpt2", "hf_config_to_gpt_config", "gpt_config_to_hf_config"]

_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_BUFFERS = (".attn.bias", ".attn.masked_bias")   # the leading dot keeps c_attn.bias


def hf_config_to_gpt_config(hf: dict):
    from tinylm.models.gpt import GPTConfig

    act = hf.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(f"config.json: activation_function {act!r} is not supported "
                         "(tinylm's GPT uses GPT-2's tanh GELU: 'gelu_new')")
    n_embd = hf["n_embd"]
    if hf.get("n_inner") not in (None, 4 * n_embd):
        raise ValueError(f"config.json: n_inner={hf['n_inner']} is not supported (only 4 * n_embd = {4 * n_embd})")
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if hf.get(flag):
            raise ValueError(f"config.json: {flag}=true is not supported")
    if hf.get("scale_attn_weights", True) is False:
        raise ValueError("config.json: scale_attn_weights=false is not supported")
    if hf.get("tie_word_embeddings", True) is False:
        raise ValueError("config.json: tie_word_embeddings=false is not supported (GPT-2 ties the LM head)")
    known = {"vocab_size", "n_positions", "n_layer", "n_head", "n_embd", "resid_pdrop", "layer_norm_epsilon"}
    return GPTConfig(vocab_size=hf["vocab_size"], block_size=hf["n_positions"], n_layer=hf["n_layer"],
                     n_head=hf["n_head"], n_embd=n_embd, dropout=float(hf.get("resid_pdrop", 0.0)),
                     bias=True, layer_norm_epsilon=float(hf.get("layer_norm_epsilon", 1e-5)),
                     extra={k: v for k, v in hf.items() if k not in known})


def gpt_config_to_hf_config(cfg) -> dict:
    if not cfg.bias:
        raise ValueError("save_pretrained: GPT-2 checkpoints always have biases; this model has bias=False")
    hf = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
          "attn_pdrop": cfg.dropout, "embd_pdrop": cfg.dropout, "n_inner": None,
          "n_ctx": cfg.block_size, "scale_attn_weights": True, "tie_word_embeddings": True}
    hf.update({k: v for k, v in cfg.extra.items()})          # keep what the loaded file said
    hf.update({"vocab_size": cfg.vocab_size, "n_positions": cfg.block_size, "n_layer": cfg.n_layer,
               "n_head": cfg.n_head, "n_embd": cfg.n_embd, "resid_pdrop": cfg.dropout,
               "layer_norm_epsilon": cfg.layer_norm_epsilon})
    return hf


def load_gpt2(cls, path, dtype=np.float32):
    path = pathlib.Path(path)
    cfg_file, weights_file = path / "config.json", path / "model.safetensors"
    for f in (cfg_file, weights_file):
        if not f.is_file():
            raise FileNotFoundError(f"from_pretrained: {f} not found (expected a Hugging Face GPT-2 directory "
                                    "with config.json and model.safetensors)")
    cfg = hf_config_to_gpt_config(json.loads(cfg_file.read_text()))
    model = cls(cfg).to(dtype)
    raw = load_safetensors(weights_file)
    state = {}
    for name, arr in raw.items():
        if name.endswith(_BUFFERS) or name == "lm_head.weight":
            continue
        key = name if name.startswith("transformer.") else f"transformer.{name}"
        state[key] = arr.T if key.endswith(_CONV1D) else arr
    if "lm_head.weight" in raw and "transformer.wte.weight" in state:
        if not np.array_equal(raw["lm_head.weight"], state["transformer.wte.weight"]):
            raise ValueError("from_pretrained: lm_head.weight differs from wte.weight, but GPT-2 ties them")
    model.load_state_dict(state, strict=True)
    return model


def save_gpt2(model, path) -> None:
    path = pathlib.Path(path)
    os.makedirs(path, exist_ok=True)
    hf = gpt_config_to_hf_config(model.config)
    tensors = {}
    for name, arr in model.state_dict().items():
        a = to_numpy(arr)
        tensors[name] = np.ascontiguousarray(a.T if name.endswith(_CONV1D) else a)
    save_safetensors(path / "model.safetensors", tensors, metadata={"format": "pt"})
    tmp = path / "config.json.tmp"
    tmp.write_text(json.dumps(hf, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path / "config.json")
