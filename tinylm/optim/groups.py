"""Parameter groups for weight decay: decay the matrices, not the biases and LayerNorm gains.

Decaying a bias or a LayerNorm gain pulls it towards 0, which only shifts or shrinks activations
and does not regularise the model's capacity; GPT-2, BERT and nanoGPT decay the >= 2-D weights
(Linear and embedding matrices) only.
"""
from __future__ import annotations

from tinylm.nn.module import Module
from tinylm.optim.optimizer import check_nonnegative

__all__ = ["weight_decay_groups"]


def weight_decay_groups(model, weight_decay: float) -> list[dict]:
    """Two optimizer param groups: every >= 2-D parameter with ``weight_decay``, the rest with 0.

    ``AdamW(weight_decay_groups(model, 0.1), lr=...)``. A parameter shared by two modules (a tied
    embedding) appears once, as in ``model.named_parameters()``.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model: expected a tinylm Module (the groups are split by parameter shape), "
                        f"got {type(model).__name__}")
    weight_decay = check_nonnegative("weight_decay", weight_decay)
    params = [p for _, p in model.named_parameters()]
    return [{"params": [p for p in params if p.data.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.data.ndim < 2], "weight_decay": 0.0}]
