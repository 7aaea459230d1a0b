"""Masked-language-model inputs: BERT's 15% / 80-10-10 corruption, drawn afresh for every batch.

For each sequence, 15% of the maskable tokens (everything except special tokens such as [CLS],
[SEP], [PAD], and except padding) are chosen as prediction targets, rounded to the nearest count
and at least one. Each chosen token is then

* replaced by ``[MASK]`` with probability 0.8,
* replaced by a token drawn uniformly from the vocabulary with probability 0.1,
* left unchanged with probability 0.1,

and its label is the original id; every other label is -100, which ``CrossEntropyLoss`` ignores.
The random and unchanged cases keep the model from learning that only ``[MASK]`` positions matter
(the fine-tuning inputs never contain ``[MASK]``). This follows the original BERT's
``create_pretraining_data.py``, which picks an exact count per sequence; Hugging Face's
``DataCollatorForLanguageModeling`` instead flips a 15% coin per token.

Dynamic masking (RoBERTa): :class:`DynamicMasking` draws new positions every time it is called,
so the model sees a different corruption of the same text in each epoch. Given a seed it is
reproducible. Plain NumPy on the host; move the arrays to the backend afterwards.

Tests: tests/test_bert.py.  Example: examples/bert_pretrain.py.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from tinylm._checks import check_index_range, check_int, check_positive_int, check_probability, check_shape
from tinylm.backend import to_numpy
from tinylm.random import make_rng

__all__ = ["IGNORE_INDEX", "mask_tokens", "DynamicMasking"]

IGNORE_INDEX = -100     # the label of positions that are not predicted (CrossEntropyLoss's default)


def _check_rate(name: str, p) -> float:
    return check_probability(name, p, allow_one=True)


def mask_tokens(input_ids, *, mask_token_id: int, vocab_size: int, special_ids: Iterable[int] = (),
                attention_mask=None, mlm_probability: float = 0.15, mask_fraction: float = 0.8,
                random_fraction: float = 0.1, rng=None):
    """Corrupt ``input_ids`` for masked-LM training.

    Shapes: input_ids (B, T) integer in [0, vocab_size); attention_mask (B, T) 1/0 or None ->
    ``(inputs, labels)``, both (B, T) int64: ``inputs`` the corrupted ids, ``labels`` the original
    id at each chosen position and -100 elsewhere.

    ``special_ids``: ids never chosen ([CLS], [SEP], [PAD], ...); positions where attention_mask is
    0 are never chosen either. ``mlm_probability`` of each sequence's maskable tokens are chosen
    (rounded, at least one when the sequence has any); of those, ``mask_fraction`` become
    ``mask_token_id``, ``random_fraction`` a uniform random id, the rest stay. ``rng``: None (tinylm's
    global generator), an int seed or a ``numpy.random.Generator``.
    """
    ids = to_numpy(input_ids)
    check_int("input_ids", ids)
    dims = check_shape("input_ids", ids, ("B", "T"))
    vocab_size = check_positive_int("vocab_size", vocab_size)
    check_index_range("input_ids", ids, vocab_size, what="token ids")
    if isinstance(mask_token_id, bool) or not isinstance(mask_token_id, (int, np.integer)) \
            or not 0 <= mask_token_id < vocab_size:
        raise ValueError(f"mask_token_id: expected an int in [0, {vocab_size}), got {mask_token_id!r}")
    special = np.asarray(sorted({int(s) for s in special_ids}), dtype=np.int64)
    p = _check_rate("mlm_probability", mlm_probability)
    f_mask, f_rand = _check_rate("mask_fraction", mask_fraction), _check_rate("random_fraction", random_fraction)
    if f_mask + f_rand > 1.0 + 1e-12:
        raise ValueError(f"mask_fraction + random_fraction: must be at most 1, got {f_mask} + {f_rand}")
    gen = make_rng(rng)

    maskable = ~np.isin(ids, special)                                     # (B,T)
    if attention_mask is not None:
        am = to_numpy(attention_mask)
        check_shape("attention_mask", am, ("B", "T"), dims)
        maskable &= am != 0
    n = maskable.sum(axis=1)                                              # (B,) maskable tokens per row
    k = np.where(n > 0, np.maximum(1, np.rint(p * n)), 0).astype(np.int64) if p > 0 else np.zeros_like(n)   # (B,)
    # A random priority per token, +inf where not maskable: the k smallest of each row are chosen,
    # which is a uniform choice of k positions without replacement.
    priority = np.where(maskable, gen.random(ids.shape), np.inf)          # (B,T)
    rank = np.argsort(np.argsort(priority, axis=1), axis=1)               # (B,T) 0 = smallest
    chosen = rank < k[:, None]                                            # (B,T)

    u = gen.random(ids.shape)                                             # (B,T) which corruption
    to_mask = chosen & (u < f_mask)
    to_random = chosen & (u >= f_mask) & (u < f_mask + f_rand)
    inputs = ids.astype(np.int64, copy=True)
    inputs[to_mask] = mask_token_id
    inputs[to_random] = gen.integers(0, vocab_size, size=int(to_random.sum()))
    labels = np.where(chosen, ids, IGNORE_INDEX).astype(np.int64)
    return inputs, labels


class DynamicMasking:
    """:func:`mask_tokens` with fixed settings and its own generator: each call masks anew.

        masking = DynamicMasking(mask_token_id=tok.mask_token_id, vocab_size=tok.vocab_size,
                                 special_ids=tok.special_tokens.values(), seed=0)
        inputs, labels = masking(input_ids, attention_mask)

    ``seed``: an int (reproducible), a ``numpy.random.Generator``, or None (tinylm's global generator).
    """

    def __init__(self, *, mask_token_id: int, vocab_size: int, special_ids: Iterable[int] = (),
                 mlm_probability: float = 0.15, mask_fraction: float = 0.8, random_fraction: float = 0.1,
                 seed=None):
        self.settings = dict(mask_token_id=mask_token_id, vocab_size=vocab_size, special_ids=tuple(special_ids),
                             mlm_probability=mlm_probability, mask_fraction=mask_fraction,
                             random_fraction=random_fraction)
        self.rng = None if seed is None else make_rng(seed)
        mask_tokens(np.zeros((1, 1), np.int64), **self.settings, rng=np.random.default_rng(0))   # validate now

    def __call__(self, input_ids, attention_mask=None):
        return mask_tokens(input_ids, attention_mask=attention_mask, rng=self.rng, **self.settings)

    def __repr__(self) -> str:
        s = self.settings
        return (f"DynamicMasking(mlm_probability={s['mlm_probability']}, mask={s['mask_fraction']}, "
                f"random={s['random_fraction']}, special_ids={s['special_ids']})")
