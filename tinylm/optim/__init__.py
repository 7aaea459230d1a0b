"""Optimizers, learning-rate schedules, gradient clipping, penalties and the NaN guard.

They read ``p.grad`` and write ``p.data``; nothing else in tinylm changes weights.
Update rules and formulas: derivations/optim.md.
"""
from tinylm.optim.optimizer import Optimizer
from tinylm.optim.sgd import SGD
from tinylm.optim.adam import Adam, AdamW
from tinylm.optim.adagrad import Adagrad
from tinylm.optim.clip import clip_grad_norm_, clip_grad_value_
from tinylm.optim.regularization import l1_penalty, l1_penalty_backward, l2_penalty, l2_penalty_backward
from tinylm.optim.lr_scheduler import CosineWithWarmup, LinearDecay, LRScheduler, StepLR
from tinylm.optim.guard import NonFiniteLossError, check_finite
from tinylm.optim.groups import weight_decay_groups

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adagrad", "clip_grad_norm_", "clip_grad_value_",
           "l2_penalty", "l2_penalty_backward", "l1_penalty", "l1_penalty_backward",
           "LRScheduler", "StepLR", "CosineWithWarmup", "LinearDecay", "NonFiniteLossError", "check_finite",
           "weight_decay_groups"]
