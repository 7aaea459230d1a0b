"""Callbacks for ``Sequential.fit``, as in Keras: ``History``, ``EarlyStopping``, ``ProgbarLogger``.

``fit`` calls, on every callback in order: ``on_train_begin``, then per epoch ``on_epoch_begin``,
``on_train_batch_end(batch, logs)`` after each step (``logs`` holds the epoch's running means so
far, e.g. ``{"loss": 0.41, "accuracy": 0.81}``), ``on_epoch_end(epoch, logs)`` (adds the
``val_`` results), and finally ``on_train_end``. ``callback.model`` is the model being trained; a
callback stops training by setting ``model.stop_training = True``.

``fit`` always adds a ``History`` (returned by ``fit``) and, unless ``verbose=0``, a
``ProgbarLogger``. Tests: tests/test_keras.py.
"""
from __future__ import annotations

import math
import sys
import time

from tinylm._checks import check_choice, is_real

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ProgbarLogger"]


class Callback:
    """Base class: every hook does nothing; override the ones you need."""

    def __init__(self):
        self.model = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass


class CallbackList:
    """Calls one hook on every callback, in order."""

    def __init__(self, callbacks, model):
        self.callbacks = list(callbacks)
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks[{i}]: expected a tinylm.keras.callbacks.Callback, got {type(cb).__name__}")
            cb.set_model(model)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args, **kwargs):
            for cb in self.callbacks:
                getattr(cb, hook)(*args, **kwargs)
        return call


class History(Callback):
    """Records the epoch logs: ``history.history["loss"]`` is the list of per-epoch losses, and so
    on for every metric and ``val_`` entry; ``history.epoch`` the epoch indices (from 0)."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.history, self.epoch = {}, []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    ``EarlyStopping(monitor="val_loss", min_delta=0, patience=0, mode="auto", restore_best_weights=False,
    verbose=0)``. Improving means falling by more than ``min_delta`` (mode "min") or rising by more
    than it (mode "max"); "auto" picks "max" for accuracy-like names, else "min". With
    ``restore_best_weights`` the model ends training with the weights of its best epoch.
    A ``monitor`` missing from the logs (e.g. ``val_loss`` without ``validation_data``) is an error.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0, mode: str = "auto",
                 restore_best_weights: bool = False, verbose: int = 0):
        super().__init__()
        check_choice("mode", mode, ("auto", "min", "max"))
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience: expected an int >= 0, got {patience!r}")
        if not is_real(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta: expected a number >= 0, got {min_delta!r}")
        if mode == "auto":
            mode = "max" if any(s in monitor for s in ("acc", "auc", "precision", "recall", "f1")) else "min"
        self.monitor, self.min_delta, self.patience, self.mode = monitor, float(min_delta), patience, mode
        self.restore_best_weights, self.verbose = bool(restore_best_weights), verbose

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_epoch = 0, None, None
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping: monitor {self.monitor!r} is not in the epoch logs {sorted(logs)}"
                             + ("; pass validation_data to fit" if self.monitor.startswith("val_") else ""))
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: v.copy() for k, v in self.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= max(self.patience, 1):
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
        if self.verbose and self.stopped_epoch is not None:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping (best {self.monitor} = {self.best:.4f} "
                  f"at epoch {self.best_epoch + 1})")


def format_logs(logs: dict) -> str:
    """``"loss: 0.4123 - accuracy: 0.8125"``, Keras' log line."""
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


class ProgbarLogger(Callback):
    """The progress display of ``fit``: ``verbose=1`` a bar per epoch with the running loss and
    metrics (tqdm's when it is installed, else a plain line redrawn at most 10 times a second),
    ``verbose=2`` one line per epoch. ``fit`` sets ``epochs`` and ``steps`` (None when unknown)."""

    def __init__(self, verbose: int = 1, epochs: int = 1, steps: int | None = None, stream=None):
        super().__init__()
        check_choice("verbose", verbose, (1, 2))
        self.verbose, self.epochs, self.steps = verbose, epochs, steps
        self.stream = sys.stdout if stream is None else stream
        self._bar = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._last = time.perf_counter()
        self._seen = 0
        print(f"Epoch {epoch + 1}/{self.epochs}", file=self.stream)
        if self.verbose == 1:
            try:
                from tqdm import tqdm
            except ImportError:
                self._bar = None
            else:
                self._bar = tqdm(total=self.steps, unit="step", file=self.stream, dynamic_ncols=True, leave=True)

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        if self.verbose != 1:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(format_logs(logs or {}), refresh=False)
            self._bar.update(1)
        elif time.perf_counter() - self._last >= 0.1:
            self._last = time.perf_counter()
            total = "?" if self.steps is None else self.steps
            self.stream.write(f"\r{self._seen}/{total} - {format_logs(logs or {})}")
            self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        line = f"{self._seen}/{self._seen} - {seconds:.0f}s - {format_logs(logs or {})}"
        if self._bar is not None:
            self._bar.set_postfix_str(format_logs(logs or {}), refresh=True)
            self._bar.close()
            self._bar = None
        elif self.verbose == 1:
            self.stream.write("\r" + line + "\n")
        else:
            print(line, file=self.stream)
