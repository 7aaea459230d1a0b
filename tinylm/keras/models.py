"""``Sequential``: Keras' model API over tinylm layers, with its training loop written out.

The source article's program runs as written, with only its imports changed::

    from tinylm.keras.layers import Embedding, LSTM, Dense
    from tinylm.keras.models import Sequential

    model = Sequential([Embedding(input_dim=10000, output_dim=32), LSTM(128), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(train_data, epochs=10, batch_size=32, validation_data=test_data)   # train_data = (x, y)

One training step of ``fit`` is what every example in this repository spells out by hand:
``zero_grad``, forward through the layers, the loss, ``check_finite`` (a nan/inf loss stops with an
error naming the step, before any weight changes), backward through the layers in reverse, and
``optimizer.step()``.

**Losses.** "binary_crossentropy" is the cross-entropy of probabilities. When the last layer is
``Dense(..., activation="sigmoid")`` the loss is fused with that sigmoid: it is computed from the
Dense's logits z as ``BCEWithLogitsLoss`` (``(1 - y) z + softplus(-z)``, exact for any z), and the
backward starts at the logits with ``sigmoid(z) - y``, skipping the sigmoid's backward. Keras'
own version clips the probabilities to [1e-7, 1 - 1e-7] instead, so a confident wrong answer costs
at most ~16.1 and passes no gradient; the fused loss keeps growing and keeps a gradient of the
right size. Likewise "sparse_categorical_crossentropy" after a softmax Dense is
``CrossEntropyLoss`` on the logits. After any other last layer, both losses fall back to Keras'
clipped formulas on the outputs. "mse" is ``MSELoss``. A tinylm.nn loss module
(``BCEWithLogitsLoss``, ``CrossEntropyLoss``, ``MSELoss``) may be passed instead of a string; it is
applied to the model's output as is (and so are the metrics: "accuracy" thresholds at 0.5).

**Optimizers.** "adam", "adamw", "sgd", "adagrad" with Keras' defaults (Adam lr 1e-3 and
eps 1e-7, SGD lr 0.01, ...); or a tinylm.optim optimizer built on ``model.parameters()`` (after
``model.build(input_shape)``); or a function ``params -> optimizer``, called when training starts,
e.g. ``optimizer=lambda params: Adam(params, lr=3e-3)``.

**Data** for ``fit``, ``evaluate`` and ``predict``: arrays ``x`` (and ``y``); or one tuple
``(x, y)`` in place of ``x`` (the article's ``train_data``); or any re-iterable of
``(x_batch, y_batch)`` pairs (a list, or an object whose ``__iter__`` starts a new pass: one
generator lasts one epoch only), for which ``batch_size`` and ``shuffle`` are ignored. Float
inputs are cast to the model's dtype (float32 unless ``.double()``), as Keras casts them.

**Saving.** ``save(path)`` writes one safetensors file: the parameters, plus the layer configs
(and string ``compile`` arguments) as JSON in its metadata; ``load_model(path)`` rebuilds the model
from it. No pickle, so loading a file never runs code. Optimizer state is not saved (use
``tinylm.io.save_training_state`` to resume training exactly).

Tests: tests/test_keras.py.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from tinylm._checks import check_choice, check_flag, check_int, check_positive_int
from tinylm.backend import array_module, get_backend, to_numpy
from tinylm.io import load_with_metadata, save as save_tensors
from tinylm.keras.callbacks import CallbackList, History, ProgbarLogger, format_logs
from tinylm.keras.layers import Dense, Layer, _check_input_shape, layer_from_config
from tinylm.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from tinylm.nn.module import Module
from tinylm.optim import SGD, Adagrad, Adam, AdamW, Optimizer, check_finite
from tinylm.random import make_rng

__all__ = ["Sequential", "load_model", "OPTIMIZERS", "LOSSES"]

FORMAT = "tinylm.keras.Sequential/1"        # the "format" entry of a saved model's metadata

OPTIMIZERS = {                              # Keras' default hyperparameters
    "adam": lambda params: Adam(params, lr=1e-3, eps=1e-7),
    "adamw": lambda params: AdamW(params, lr=1e-3, eps=1e-7, weight_decay=4e-3),
    "sgd": lambda params: SGD(params, lr=0.01),
    "adagrad": lambda params: Adagrad(params, lr=1e-3, initial_accumulator_value=0.1, eps=1e-7),
}
LOSSES = ("binary_crossentropy", "sparse_categorical_crossentropy", "mse", "mean_squared_error")
_EPSILON = 1e-7                             # Keras' clipping epsilon for losses on probabilities


# --- targets --------------------------------------------------------------------------------------

def _targets(y, out, kind: str, loss: str):
    """``y`` as loss ``loss`` needs it, on the backend: class ids shaped ``out.shape[:-1]``
    (kind "class"), or floats shaped and typed like ``out`` ("probability" in [0, 1], or "float").
    A (B,) target for a (B, 1) output, or (B, 1) ids for (B, K) scores, are accepted as in Keras."""
    xp = array_module(("y_pred", out))
    y = to_numpy(y) if hasattr(y, "shape") else np.asarray(y)
    if kind == "class":
        want = tuple(out.shape[:-1])
        if y.shape == want + (1,):
            y = y[..., 0]
        if y.dtype.kind == "f" and np.all(y == np.round(y)):
            y = y.astype(np.int64)                           # Keras accepts integral float labels
        check_int("y", y)
        if y.shape != want:
            raise ValueError(f"y: expected class ids of shape {want} for loss {loss!r} and model output "
                             f"{tuple(out.shape)}, got shape {y.shape}")
        K = out.shape[-1]
        if y.size and (y.min() < 0 or y.max() >= K):
            bad = int(y.min()) if y.min() < 0 else int(y.max())
            raise ValueError(f"y: class ids must lie in [0, {K}) (the model's {K} outputs) for loss {loss!r}, "
                             f"got {bad}")
        return xp.asarray(y.astype(np.int64))
    if y.shape != tuple(out.shape):
        if out.shape[-1] == 1 and y.shape == tuple(out.shape[:-1]):
            y = y.reshape(out.shape)
        else:
            raise ValueError(f"y: expected shape {tuple(out.shape)} to match the model output for loss {loss!r}, "
                             f"got {y.shape}")
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y: expected numeric targets for loss {loss!r}, got dtype {y.dtype}")
    if kind == "probability" and y.size and (y.min() < 0 or y.max() > 1):
        raise ValueError(f"y: loss {loss!r} needs targets in [0, 1], got {y.min() if y.min() < 0 else y.max()}")
    return xp.asarray(y, dtype=out.dtype)


# --- losses ---------------------------------------------------------------------------------------

class _CriterionLoss:
    """A tinylm.nn loss module applied to the model output, or (``from_logits``) to the last
    Dense layer's logits, fused with its activation."""

    def __init__(self, name: str, criterion: Module, kind: str, from_logits: bool = False):
        self.name, self.criterion, self.kind, self.from_logits = name, criterion, kind, from_logits

    def forward(self, out, y) -> float:
        return self.criterion(out, _targets(y, out, self.kind, self.name))

    def backward(self):
        return self.criterion.backward(1.0)


class _ClippedBinaryCrossentropy:
    """Keras' binary cross-entropy of probabilities p: ``mean(-(y log pc + (1-y) log(1-pc)))``,
    pc = clip(p, eps, 1-eps). Used when the model does not end in a sigmoid Dense."""

    name, kind, from_logits = "binary_crossentropy", "probability", False

    def forward(self, p, y) -> float:
        xp = array_module(("y_pred", p))
        t = _targets(y, p, self.kind, self.name)
        pc = xp.clip(p, _EPSILON, 1 - _EPSILON)
        self._cache = (pc, t, (p > _EPSILON) & (p < 1 - _EPSILON))
        return float(-(t * xp.log(pc) + (1 - t) * xp.log(1 - pc)).mean())

    def backward(self):
        pc, t, inside = self._cache
        xp = array_module(("y_pred", pc))
        # l = -(t log pc + (1-t) log(1-pc))  =>  dl/dpc = (pc - t) / (pc (1-pc)); the clip passes no gradient
        return xp.where(inside, (pc - t) / (pc * (1 - pc)), 0) / pc.size


class _ClippedSparseCategoricalCrossentropy:
    """Keras' sparse categorical cross-entropy of probabilities p (..., K): ``mean(-log pc)``,
    pc = clip(p[y], eps, 1-eps). Used when the model does not end in a softmax Dense."""

    name, kind, from_logits = "sparse_categorical_crossentropy", "class", False

    def forward(self, p, y) -> float:
        xp = array_module(("y_pred", p))
        t = _targets(y, p, self.kind, self.name)
        p_t = xp.take_along_axis(p, t[..., None], axis=-1)[..., 0]             # (...,K) -> (...) p of the target
        pc = xp.clip(p_t, _EPSILON, 1 - _EPSILON)
        self._cache = (pc, t, (p_t > _EPSILON) & (p_t < 1 - _EPSILON), p.shape[-1])
        return float(-xp.log(pc).mean())

    def backward(self):
        pc, t, inside, K = self._cache
        xp = array_module(("y_pred", pc))
        dp_t = xp.where(inside, -1 / pc, 0) / pc.size                           # l = -log pc  =>  dl/dpc = -1/pc
        return xp.where(xp.arange(K) == t[..., None], dp_t[..., None], 0).astype(pc.dtype)   # only p[y] is read


def _make_loss(loss, last: Layer):
    if isinstance(loss, (BCEWithLogitsLoss, CrossEntropyLoss, MSELoss)):
        kind = {BCEWithLogitsLoss: "probability", CrossEntropyLoss: "class", MSELoss: "float"}[type(loss)]
        return _CriterionLoss(type(loss).__name__, loss, kind)
    if not isinstance(loss, str):
        raise TypeError(f"loss: expected one of {LOSSES} or a tinylm.nn loss module (BCEWithLogitsLoss, "
                        f"CrossEntropyLoss, MSELoss), got {type(loss).__name__}")
    check_choice("loss", loss, LOSSES)
    activation = last.activation if isinstance(last, Dense) else None
    if loss == "binary_crossentropy":
        if activation == "sigmoid":
            return _CriterionLoss(loss, BCEWithLogitsLoss(), "probability", from_logits=True)
        return _ClippedBinaryCrossentropy()
    if loss == "sparse_categorical_crossentropy":
        if activation == "softmax":
            return _CriterionLoss(loss, CrossEntropyLoss(), "class", from_logits=True)
        return _ClippedSparseCategoricalCrossentropy()
    return _CriterionLoss(loss, MSELoss(), "float")


# --- metrics (host NumPy: one value per batch) -----------------------------------------------------

def binary_accuracy(y_true, y_pred) -> float:
    """The fraction of outputs on the right side of 0.5."""
    return float(np.mean((y_pred > 0.5) == (y_true.reshape(y_pred.shape) > 0.5)))


def sparse_categorical_accuracy(y_true, y_pred) -> float:
    """The fraction of rows whose largest output is the target class."""
    return float(np.mean(y_pred.argmax(axis=-1) == y_true.reshape(y_pred.shape[:-1])))


def exact_accuracy(y_true, y_pred) -> float:
    """The fraction of outputs equal to their targets."""
    return float(np.mean(y_pred == y_true.reshape(y_pred.shape)))


def _make_metric(metric, loss) -> tuple[str, callable]:
    """``(name, fn(y_true, y_pred) -> float)``; "accuracy" picks the kind that fits the loss, as Keras."""
    if isinstance(metric, str):
        if metric in ("accuracy", "acc"):
            fn = {"probability": binary_accuracy, "class": sparse_categorical_accuracy}.get(loss.kind, exact_accuracy)
            return metric, fn
        known = {"binary_accuracy": binary_accuracy, "sparse_categorical_accuracy": sparse_categorical_accuracy}
        check_choice("metrics", metric, ("accuracy", "acc", *known))
        return metric, known[metric]
    if callable(metric):
        return getattr(metric, "__name__", type(metric).__name__), metric
    raise TypeError(f"metrics: expected names or functions (y_true, y_pred) -> float, got {type(metric).__name__}")


class _Means:
    """Running means of the batch logs, weighted by batch size (so an epoch's accuracy is exact)."""

    def __init__(self):
        self.totals: dict[str, float] = {}
        self.count = 0

    def add(self, logs: dict[str, float], n: int) -> None:
        for k, v in logs.items():
            self.totals[k] = self.totals.get(k, 0.0) + v * n
        self.count += n

    def result(self) -> dict[str, float]:
        return {k: v / self.count for k, v in self.totals.items()}


# --- data -----------------------------------------------------------------------------------------

def _host_array(name: str, a) -> np.ndarray:
    ragged = f"{name}: sequences of different lengths; pad them first (tinylm.text.pad_sequences)"
    try:
        a = to_numpy(a) if hasattr(a, "shape") else np.asarray(a)
    except ValueError:                                       # NumPy refuses ragged nested lists
        raise ValueError(ragged) from None
    if a.dtype == object:
        raise ValueError(ragged)
    if a.ndim == 0:
        raise ValueError(f"{name}: expected an array with a batch dimension, got a scalar")
    return a


def _is_pair(data) -> bool:
    """The article's ``train_data = (x, y)``: a 2-tuple of arrays, not a tuple of batches."""
    return isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], tuple)


class _ArrayData:
    """Batches of ``batch_size`` rows of in-memory arrays, reshuffled each pass when ``shuffle``."""

    def __init__(self, name: str, x, y, batch_size: int, shuffle: bool):
        self.x = _host_array(name, x)
        self.y = None if y is None else _host_array("y", y)
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"y: expected {len(self.x)} targets, one per sample of {name}, got {len(self.y)}")
        if len(self.x) == 0:
            raise ValueError(f"{name}: expected at least one sample, got none")
        self.batch_size, self.shuffle = batch_size, shuffle

    @property
    def steps(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self):
        n = len(self.x)
        order = make_rng(None).permutation(n) if self.shuffle else np.arange(n)   # tinylm.manual_seed decides
        for i in range(0, n, self.batch_size):
            idx = order[i:i + self.batch_size]
            yield self.x[idx], (None if self.y is None else self.y[idx])


class _BatchData:
    """A re-iterable of ready batches, ``(x_batch, y_batch)`` pairs (or bare ``x_batch`` for ``predict``)."""

    def __init__(self, name: str, batches, need_y: bool):
        self.name, self.batches, self.need_y = name, batches, need_y

    @property
    def steps(self) -> int | None:
        return len(self.batches) if hasattr(self.batches, "__len__") else None

    def __iter__(self):
        for i, batch in enumerate(self.batches):
            if isinstance(batch, tuple) and len(batch) == 2:
                where = f"{self.name} batch {i}"
                yield _host_array(f"{where}: x", batch[0]), _host_array(f"{where}: y", batch[1])
            elif self.need_y:
                raise ValueError(f"{self.name}: batch {i} is a {type(batch).__name__}, "
                                 f"expected an (x_batch, y_batch) pair")
            else:
                yield _host_array(f"{self.name} batch {i}", batch), None


def _dataset(name: str, x, y, batch_size: int, shuffle: bool, need_y: bool = True):
    """The data forms listed in the module docstring -> an iterable of (x_batch, y_batch)."""
    if y is None and _is_pair(x):
        x, y = x                                             # the article's train_data = (x, y)
    if x is None:
        raise ValueError(f"{name}: no data given")
    samples = (y is not None or hasattr(x, "shape")          # arrays, or a list of samples (not of batches)
               or (isinstance(x, list) and len(x) > 0 and not isinstance(x[0], tuple) and not hasattr(x[0], "shape")))
    if samples:
        if need_y and y is None:
            if name != "x":
                raise ValueError(f"{name}: targets are missing; pass an (x, y) pair or batches of (x_batch, y_batch)")
            raise ValueError("y: targets are missing; pass fit(x, y), fit((x, y)) or batches of (x_batch, y_batch)")
        return _ArrayData(name, x, y, batch_size, shuffle)
    if isinstance(x, (str, bytes)) or not hasattr(x, "__iter__"):
        raise TypeError(f"{name}: expected arrays, an (x, y) tuple or an iterable of batches, got {type(x).__name__}")
    return _BatchData(name, x, need_y)


# --- the model ------------------------------------------------------------------------------------

class Sequential(Module):
    """A stack of Keras layers, each feeding the next (masks included); see the module docstring.

    ``Sequential(layers=None, name="sequential")``, ``add(layer)``, ``build(input_shape)``,
    ``model(x, training=False)``, ``backward(dy)``, ``compile``, ``fit``, ``evaluate``, ``predict``,
    ``train_on_batch``, ``test_on_batch``, ``summary``, ``save``. Layers are registered under their
    names, so parameters are called e.g. ``lstm.rnn.weight_ih_l0``.
    """

    def __init__(self, layers=None, name: str = "sequential"):
        super().__init__()
        self.name = name
        self.layers: list[Layer] = []
        self.optimizer = None
        self.history = None
        self.stop_training = False
        self._loss = None
        self._metrics = []
        self._optimizer_spec = None
        self._compile_config = None
        self._build_input_shape = None
        if layers is not None and (isinstance(layers, (Layer, str, bytes)) or not hasattr(layers, "__iter__")):
            hint = " (wrap it in a list: Sequential([layer]))" if isinstance(layers, Layer) else ""
            raise TypeError(f"layers: expected a list of layers, got {type(layers).__name__}{hint}")
        for layer in layers or []:
            self.add(layer)

    # --- structure ---
    def add(self, layer: Layer) -> None:
        if not isinstance(layer, Layer):
            raise TypeError(f"layer: expected a tinylm.keras layer, got {type(layer).__name__}")
        if any(layer is other for other in self.layers):
            raise ValueError(f"layer: {layer.name!r} is already in the model")
        if layer._auto_name:                                 # embedding, then embedding_1, ... as Keras
            base, i = layer.name, 0
            while layer.name in self._modules:
                i += 1
                layer.name = f"{base}_{i}"
        if layer.name in self._modules:
            raise ValueError(f"layer: the name {layer.name!r} is already used in this model; names must be unique")
        if layer.name in self.__dict__ or hasattr(type(self), layer.name):
            raise ValueError(f"layer: the name {layer.name!r} is reserved by Sequential; choose another")
        self.add_module(layer.name, layer)
        self.layers.append(layer)
        if len(self.layers) == 1 and layer.input_shape_arg is not None:
            self.build((None,) + layer.input_shape_arg)
        elif self._build_input_shape is not None:
            layer.build(self.layers[-2].output_shape)

    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers)

    def build(self, input_shape) -> None:
        """Build every layer for inputs of ``input_shape`` (batch dimension first, may be None)."""
        if not self.layers:
            raise ValueError("build: the model has no layers")
        shape = _check_input_shape(input_shape, batch_first=True)
        for layer in self.layers:
            layer.build(shape)
            shape = layer.output_shape
        self._build_input_shape = tuple(input_shape)

    def _dtype(self):
        return next((p.dtype for p in self.parameters()), np.dtype(np.float32))

    def _as_input(self, x):
        """A batch as the first layer takes it: a backend array, floats in the model's dtype."""
        array = get_backend().asarray(x)
        if self._build_input_shape is not None and array.ndim != len(self._build_input_shape):
            raise ValueError(f"x: expected {len(self._build_input_shape)} dims, like the input shape "
                             f"{self._build_input_shape} the model was built for, got shape {tuple(array.shape)}")
        return array.astype(self._dtype(), copy=False) if array.dtype.kind == "f" else array

    # --- forward and backward ---
    def forward(self, x):
        if self._build_input_shape is None:
            self.build((None,) + tuple(x.shape[1:]))
        mask = None
        for layer in self.layers:
            x = layer(x, mask)
            mask = layer.compute_mask(mask)                  # the mask of the layer's output
        return x

    def __call__(self, x, training: bool = False):
        """``model(x)`` runs in inference mode (dropout off), as in Keras; ``training=True`` switches it on."""
        self.train(check_flag("training", training))
        return self.forward(self._as_input(x))

    def backward(self, dy):
        return self._backward_through(self.layers, dy)

    @staticmethod
    def _backward_through(layers, dy):
        for i in range(len(layers) - 1, -1, -1):
            if dy is None:
                raise RuntimeError(f"Sequential.backward: layer {layers[i + 1].name!r} returned no input gradient "
                                   f"(token ids?), so layer {layers[i].name!r} before it cannot get one")
            dy = layers[i].backward(dy)
        return dy

    # --- compile ---
    def compile(self, optimizer="adam", loss=None, metrics=None) -> None:
        """Choose the optimizer, the loss and the metrics (see the module docstring)."""
        if not self.layers:
            raise ValueError("compile: the model has no layers")
        if loss is None:
            raise ValueError(f"loss: compile needs a loss, one of {LOSSES} or a tinylm.nn loss module")
        if isinstance(optimizer, str):
            check_choice("optimizer", optimizer, tuple(OPTIMIZERS))
        elif not (isinstance(optimizer, Optimizer) or callable(optimizer)):
            raise TypeError(f"optimizer: expected one of {tuple(OPTIMIZERS)}, a tinylm.optim optimizer or a "
                            f"function params -> optimizer, got {type(optimizer).__name__}")
        if isinstance(metrics, str):
            metrics = [metrics]
        self._loss = _make_loss(loss, self.layers[-1])
        self._metrics = [_make_metric(m, self._loss) for m in (metrics or [])]
        self._optimizer_spec = optimizer
        self.optimizer = optimizer if isinstance(optimizer, Optimizer) else None
        plain = isinstance(optimizer, str) and isinstance(loss, str) and all(isinstance(m, str) for m in metrics or [])
        self._compile_config = {"optimizer": optimizer, "loss": loss, "metrics": list(metrics or [])} if plain else None

    def _require_compiled(self, what: str) -> None:
        if self._loss is None:
            raise RuntimeError(f"{what}: compile the model first (model.compile(optimizer, loss, metrics))")

    def _ensure_optimizer(self) -> None:
        if self.optimizer is None:
            spec = self._optimizer_spec
            self.optimizer = OPTIMIZERS[spec](self.parameters()) if isinstance(spec, str) else spec(self.parameters())
            if not isinstance(self.optimizer, Optimizer):
                raise TypeError(f"optimizer: the function returned a {type(self.optimizer).__name__}, "
                                f"expected a tinylm.optim optimizer")
        covered = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
        missing = [n for n, p in self.named_parameters() if id(p) not in covered]
        if missing:
            raise ValueError(f"optimizer: does not hold the model's parameters {missing[:4]}; build the model first "
                             f"and create it on model.parameters(), or pass a function params -> optimizer")

    # --- one batch ---
    def _forward_loss(self, xb, yb):
        """Forward and loss of one batch: ``(loss value, model output)``."""
        out = self.forward(self._as_input(xb))
        head = self.layers[-1].logits if self._loss.from_logits else out
        return self._loss.forward(head, yb), out

    def _backward_loss(self) -> None:
        """Backward from the loss of the last ``_forward_loss`` into every parameter's ``.grad``."""
        grad, layers = self._loss.backward(), self.layers
        if self._loss.from_logits:                           # fused: start below the last activation
            grad, layers = layers[-1].backward_logits(grad), layers[:-1]
        self._backward_through(layers, grad)

    def _logs(self, loss: float, yb, out) -> dict[str, float]:
        y_true, y_pred = _host_array("y", yb), to_numpy(out)
        return {"loss": loss, **{name: fn(y_true, y_pred) for name, fn in self._metrics}}

    def _train_step(self, xb, yb, step: int) -> dict[str, float]:
        self.train()
        self.zero_grad()
        loss, out = self._forward_loss(xb, yb)
        loss = check_finite(loss, step)                      # nan/inf: stop before the weights change
        self._backward_loss()
        self.optimizer.step()
        return self._logs(loss, yb, out)

    def train_on_batch(self, x, y):
        """One optimizer step on one batch; returns the loss, or ``[loss, *metrics]``."""
        self._require_compiled("train_on_batch")
        if self._build_input_shape is None:
            self.build((None,) + tuple(np.shape(x)[1:]))
        self._ensure_optimizer()
        return self._result(self._train_step(x, y, step=1))

    def test_on_batch(self, x, y):
        """The loss (or ``[loss, *metrics]``) of one batch, in inference mode; nothing changes."""
        self._require_compiled("test_on_batch")
        self.eval()
        loss, out = self._forward_loss(x, y)
        return self._result(self._logs(loss, y, out))

    @staticmethod
    def _result(logs: dict):
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    # --- fit, evaluate, predict ---
    def fit(self, x=None, y=None, batch_size: int = 32, epochs: int = 1, verbose: int = 1, callbacks=None,
            validation_data=None, shuffle: bool = True) -> History:
        """Train for ``epochs`` passes over the data; returns the ``History`` (also ``model.history``).

        ``verbose``: 0 silent, 1 a progress bar per epoch with the running loss and metrics,
        2 one line per epoch. ``callbacks``: a list of ``tinylm.keras.callbacks.Callback``.
        """
        self._require_compiled("fit")
        check_positive_int("batch_size", batch_size)
        check_positive_int("epochs", epochs)
        check_choice("verbose", verbose, (0, 1, 2))
        shuffle = check_flag("shuffle", shuffle)
        train = _dataset("x", x, y, batch_size, shuffle)
        val = None if validation_data is None else _dataset("validation_data", validation_data, None, batch_size, False)
        history = History()
        cbs = [history, *(callbacks or [])]
        if verbose:
            cbs.insert(0, ProgbarLogger(verbose, epochs, train.steps))
        hooks = CallbackList(cbs, self)
        self.stop_training, step = False, 0
        hooks.on_train_begin()
        for epoch in range(epochs):
            hooks.on_epoch_begin(epoch)
            means = _Means()
            for batch, (xb, yb) in enumerate(train):
                if step == 0:                                # shapes are known now: build, then the optimizer
                    if self._build_input_shape is None:
                        self.build((None,) + tuple(xb.shape[1:]))
                    self._ensure_optimizer()
                step += 1
                means.add(self._train_step(xb, yb, step), len(xb))
                hooks.on_train_batch_end(batch, means.result())
            if means.count == 0:
                raise ValueError(f"x: the training data yielded no batch in epoch {epoch + 1} (a generator is used "
                                 f"up after one pass: pass a list, or an object whose __iter__ starts over)")
            logs = means.result()
            if val is not None:
                logs.update({f"val_{k}": v for k, v in self._evaluate(val).items()})
            hooks.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        hooks.on_train_end()
        self.eval()
        self.history = history
        return history

    def _evaluate(self, data) -> dict[str, float]:
        self.eval()
        means = _Means()
        for xb, yb in data:
            loss, out = self._forward_loss(xb, yb)
            means.add(self._logs(loss, yb, out), len(xb))
        if means.count == 0:
            raise ValueError("x: the evaluation data yielded no batch")
        return means.result()

    def evaluate(self, x=None, y=None, batch_size: int = 32, verbose: int = 1, return_dict: bool = False):
        """Loss and metrics over the data, in inference mode: the loss, ``[loss, *metrics]``, or a dict."""
        self._require_compiled("evaluate")
        check_positive_int("batch_size", batch_size)
        logs = self._evaluate(_dataset("x", x, y, batch_size, False))
        if verbose:
            print(format_logs(logs))
        return logs if return_dict else self._result(logs)

    def predict(self, x, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """The model's outputs for ``x`` (arrays, or batches), in inference mode, as one host NumPy
        array. (``verbose`` is accepted for Keras compatibility; predict prints nothing.)"""
        check_positive_int("batch_size", batch_size)
        self.eval()
        outputs = [to_numpy(self.forward(self._as_input(xb)))
                   for xb, _ in _dataset("x", x, None, batch_size, False, need_y=False)]
        return np.concatenate(outputs)

    # --- summary, config, saving ---
    def summary(self, print_fn=print) -> None:
        """Print a Keras-style table: each layer's name, type, output shape and parameter count."""
        names = [f" {layer.name} ({type(layer).__name__})" for layer in self.layers]
        widths = (max([29] + [len(n) + 2 for n in names]), 26, 10)
        rule = "_" * sum(widths)

        def row(*cells):
            return "".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

        lines = [f'Model: "{self.name}"', rule, row(" Layer (type)", "Output Shape", "Param #"), "=" * sum(widths)]
        for name, layer in zip(names, self.layers):
            shape = layer.output_shape if layer.built else "? (unbuilt)"
            lines.append(row(name, shape, f"{layer.count_params():,}"))
        total = self.num_parameters()
        trainable = sum(int(np.prod(p.shape)) for p in self.parameters() if p.requires_grad)
        lines += ["=" * sum(widths), f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", rule]
        print_fn("\n".join(lines))

    def get_config(self) -> dict:
        return {"name": self.name,
                "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self.layers],
                "build_input_shape": None if self._build_input_shape is None else list(self._build_input_shape)}

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        model = cls([layer_from_config(spec) for spec in config["layers"]], name=config.get("name", "sequential"))
        if config.get("build_input_shape") is not None and not model.built:
            model.build(tuple(config["build_input_shape"]))
        return model

    def save(self, path) -> None:
        """Write the model to one safetensors file (see the module docstring)."""
        if self._build_input_shape is None:
            raise ValueError("save: the model is not built yet (call it on data, fit it, or model.build(input_shape))")
        metadata = {"format": FORMAT, "config": json.dumps(self.get_config())}
        if self._compile_config is not None:
            metadata["compile"] = json.dumps(self._compile_config)
        save_tensors(os.fspath(path), self.state_dict(), metadata)


def load_model(path, compile: bool = True) -> Sequential:
    """A model written by ``Sequential.save``: rebuilt from its configs, with its weights (and,
    when ``compile`` and it was compiled with strings, compiled again; the optimizer starts fresh)."""
    tensors, metadata = load_with_metadata(os.fspath(path))
    if metadata.get("format") != FORMAT:
        raise ValueError(f"load_model: {os.fspath(path)} is not a saved tinylm.keras model (metadata format "
                         f"{metadata.get('format')!r}, expected {FORMAT!r})")
    model = Sequential.from_config(json.loads(metadata["config"]))
    dtypes = {t.dtype for t in tensors.values()}
    if len(dtypes) == 1:
        model.to(dtypes.pop())                               # e.g. a model saved after .double()
    model.load_state_dict(tensors)
    if compile and "compile" in metadata:
        model.compile(**json.loads(metadata["compile"]))
    return model
