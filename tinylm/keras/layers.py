"""Keras layers as thin wrappers over tinylm.nn: each builds its tinylm.nn module(s) on the first
input it sees (when the input size becomes known, as Keras does) and hands forward and backward
to them. No layer here holds math of its own; the only array work is moving axes between Keras'
layout and PyTorch's, and reordering time steps for masks (below).

======================  ===================================  ==========================================
Keras layer             tinylm.nn module                     layout change
======================  ===================================  ==========================================
Embedding               nn.Embedding                         none; ``mask_zero`` makes the mask
SimpleRNN, LSTM, GRU    nn.RNN, nn.LSTM, nn.GRU              ``batch_first=True``; mask -> ``lengths``
Bidirectional(layer)    the same module, bidirectional=True  outputs concatenated [forward, backward]
Conv1D                  nn.Conv1d                            (B, T, C) <-> (B, C, T)
GlobalMaxPooling1D      nn.GlobalMaxPool1d                   (B, T, C) -> (B, C, T); padding left out
GlobalAveragePooling1D  nn.GlobalAvgPool1d                   (B, T, C) -> (B, C, T); padding left out
Dropout                 nn.Dropout                           none
Dense                   nn.Linear (+ activation module)      none (acts on the last axis)
======================  ===================================  ==========================================

Shapes are Keras' (batch first, channels last): B batch, T steps, C features, U units, F filters.

**Masks.** ``Embedding(mask_zero=True)`` marks id 0 as padding: the mask (B, T) is True at real
steps and flows down the stack (``compute_mask``). A recurrent layer turns it into the ``lengths``
tinylm's recurrent modules take: the real steps of each sequence must be one contiguous run,
so padding may sit in front (``pad_sequences``' default) or behind. The layer moves each run to
the start (a per-row gather), drops the columns that are padding in every row, runs the module
with ``lengths``, and puts the outputs back where the steps came from (the matching scatter, which
is also the gather's backward: derivations/embedding.md, Reordering time steps). The final state
is that of each sequence's last real step, as with Keras' masks and PyTorch's packed sequences;
padded steps output zero (PyTorch's choice: Keras may repeat the previous output there) and get
zero gradient. Conv1D passes a mask on (an output
window is real when it covers a real step) so that global pooling can leave padding out: a tinylm
addition, Keras' Conv1D does not propagate masks.

**Initialisation** follows Keras' defaults, not PyTorch's: Dense, Conv1D and the recurrent input
kernels glorot-uniform; recurrent kernels orthogonal; biases zero, except the LSTM forget gate's
(one, Keras' ``unit_forget_bias``); Embedding uniform(-0.05, 0.05). PyTorch's recurrent modules
have two bias vectors where Keras' LSTM and SimpleRNN have one, so ``summary`` counts G*U more
parameters per recurrent layer than Keras does. Keras' GRU (``reset_after=True``) is PyTorch's GRU
up to the gate order (Keras z, r, h; PyTorch r, z, n).

Tests: tests/test_keras.py.
"""
from __future__ import annotations

import math
import re

import numpy as np

from tinylm._checks import check_choice, check_flag, check_int, check_positive_int, check_probability
from tinylm.backend import array_module, get_backend, to_numpy
from tinylm.nn import init
from tinylm.nn.activation import ReLU, Sigmoid, Softmax, Tanh
from tinylm.nn.conv import Conv1d, GlobalAvgPool1d, GlobalMaxPool1d
from tinylm.nn.dropout import Dropout as _Dropout
from tinylm.nn.embedding import Embedding as _Embedding
from tinylm.nn.linear import Linear
from tinylm.nn.module import Module, Parameter
from tinylm.nn.recurrent import GRU as _GRU, LSTM as _LSTM, RNN as _RNN
from tinylm.ops.conv import conv_output_length
from tinylm.random import make_rng

__all__ = ["Layer", "Embedding", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "Conv1D", "GlobalMaxPooling1D",
           "GlobalAveragePooling1D", "Dropout", "Dense", "ACTIVATIONS", "LAYERS", "layer_from_config"]

ACTIVATIONS = {None: None, "linear": None, "relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "softmax": Softmax}


def _snake_case(name: str) -> str:
    """Keras' default layer name: "GlobalMaxPooling1D" -> "global_max_pooling1d", "LSTM" -> "lstm"."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


# --- Keras' default initialisers, drawn on the host from tinylm's generator --------------------

def _glorot_uniform(shape, fan_in: int, fan_out: int, dtype):
    return init.uniform(shape, math.sqrt(6.0 / (fan_in + fan_out)), dtype)


def _orthogonal(shape, dtype):
    """A (rows, cols) matrix with orthonormal columns (rows >= cols) or rows: QR of a Gaussian."""
    rows, cols = shape
    q, r = np.linalg.qr(make_rng(None).standard_normal((max(rows, cols), min(rows, cols))))
    q *= np.sign(np.diag(r))                                 # a unique, uniformly distributed Q
    return get_backend().asarray((q if rows >= cols else q.T).astype(dtype))


def _reset(p: Parameter | None, value) -> None:
    """Replace a freshly built parameter's initial value (build time only; training never does this)."""
    if p is not None:
        p.data = value


# --- the base class ---------------------------------------------------------------------------

def _check_input_shape(input_shape, batch_first: bool = False) -> tuple:
    """An ``input_shape``: a tuple of positive ints or None. Keras 2 layers leave the batch dimension
    out (``Dense(3, input_shape=(8,))``); ``Sequential.build`` puts it first (``(None, 8)``)."""
    if not isinstance(input_shape, (tuple, list)) or not all(
            d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1)
            for d in input_shape):
        where, example = ("batch dimension first", "(None, 3)") if batch_first else \
            ("the batch dimension left out", "(3,) or (None, 8)")
        raise ValueError(f"input_shape: expected a tuple of positive ints or None ({where}), e.g. {example}, "
                         f"got {input_shape!r}")
    return tuple(None if d is None else int(d) for d in input_shape)


class Layer(Module):
    """What every Keras layer shares.

    * ``build(input_shape)`` creates the tinylm.nn module(s) (subclasses implement ``_build``);
      the first call builds the layer from its input. ``input_shape`` as a constructor argument
      (Keras 2 style, batch dimension left out) lets ``Sequential`` build at once.
    * ``y = layer(x, mask=None)`` and ``dx = layer.backward(dy)`` (None for token ids), the
      tinylm.nn contract; subclasses implement ``call`` (Keras' name) and ``_backward``.
      ``compute_mask(mask)`` is the mask handed to the next layer.
    * ``compute_output_shape(input_shape)``, ``get_config()`` (the constructor's arguments; with
      ``layer_from_config`` it rebuilds the layer) and ``count_params()``.
    """

    def __init__(self, name: str | None = None, input_shape=None):
        super().__init__()
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"name: expected a non-empty str, got {name!r}")
        self._auto_name = name is None                       # Sequential may add a suffix to keep names unique
        self.name = _snake_case(type(self).__name__) if name is None else name
        self.input_shape_arg = None if input_shape is None else _check_input_shape(input_shape)
        self.built = False
        self.output_shape = None                             # (None, ...) once built

    def forward(self, x, mask=None):
        if not hasattr(x, "shape"):
            raise TypeError(f"{self.name} ({type(self).__name__}): x: expected an array, got {type(x).__name__}")
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))
        return self.call(x, mask)

    def backward(self, dy):
        if not self.built:
            raise RuntimeError(f"{self.name} ({type(self).__name__}): backward called before forward")
        return self._backward(dy)

    def call(self, x, mask=None):
        raise NotImplementedError(f"{type(self).__name__}.call")

    def _backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__}._backward")

    def build(self, input_shape) -> None:
        """Create the parameters for inputs of ``input_shape`` (batch dimension first, may be None)."""
        input_shape = tuple(input_shape)
        if not self.built:
            self._build(input_shape)
            self.built = True
        self.output_shape = self.compute_output_shape(input_shape)

    def _build(self, input_shape) -> None:
        pass                                                 # layers without parameters

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def compute_mask(self, mask):
        return mask                                          # most layers keep the time axis: pass it on

    def get_config(self) -> dict:
        return {"name": self.name, **self._config()}

    def _config(self) -> dict:
        return {}

    def count_params(self) -> int:
        return self.num_parameters()

    def _check_ndim(self, x, ndim: int, layout: str, at_least: bool = False) -> None:
        n = getattr(x, "ndim", None)
        if n is None or (n < ndim if at_least else n != ndim):
            raise ValueError(f"{self.name} ({type(self).__name__}): input: expected {'at least ' if at_least else ''}"
                             f"{ndim} dims {layout}, got shape {tuple(getattr(x, 'shape', ()))}")

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())


def _activation(name):
    check_choice("activation", name, tuple(ACTIVATIONS))
    cls = ACTIVATIONS[name]
    return None if cls is None else cls()


# --- Embedding ----------------------------------------------------------------------------------

class Embedding(Layer):
    """``Embedding(input_dim, output_dim, mask_zero=False, input_length=None)``: token ids -> vectors.

    Shapes: ids (B, T) integers in [0, input_dim) -> (B, T, output_dim) (any leading shape works).
    ``mask_zero=True`` treats id 0 as padding: the next layers get the mask ``ids != 0``.
    ``input_length`` (Keras 2) fixes T, so the model can be built before it sees data.
    Parameter: ``embedding.weight`` (input_dim, output_dim).
    """

    def __init__(self, input_dim: int, output_dim: int, mask_zero: bool = False, input_length: int | None = None,
                 name: str | None = None, input_shape=None):
        if input_shape is None and input_length is not None:
            input_shape = (check_positive_int("input_length", input_length),)
        super().__init__(name, input_shape)
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.output_dim = check_positive_int("output_dim", output_dim)
        self.mask_zero = check_flag("mask_zero", mask_zero)
        self.input_length = None if input_length is None else check_positive_int("input_length", input_length)
        self._mask = None

    def _build(self, input_shape):
        self.embedding = _Embedding(self.input_dim, self.output_dim)
        _reset(self.embedding.weight, init.uniform((self.input_dim, self.output_dim), 0.05, np.float32))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def call(self, x, mask=None):
        array_module(("x", x))
        check_int("x", x)
        if self.input_length is not None and (x.ndim != 2 or x.shape[1] != self.input_length):
            raise ValueError(f"{self.name} (Embedding): x: expected shape (batch, input_length={self.input_length}), "
                             f"got shape {tuple(x.shape)}; pad or truncate the sequences to {self.input_length} "
                             f"(pad_sequences(maxlen=...)) or drop input_length")
        if x.size and (int(x.min()) < 0 or int(x.max()) >= self.input_dim):
            bad = int(x.min()) if int(x.min()) < 0 else int(x.max())
            raise ValueError(f"{self.name} (Embedding): x: token ids must lie in [0, input_dim={self.input_dim}), "
                             f"got {bad}; make the vocabulary at most input_dim ids (Tokenizer(num_words=...))")
        self._mask = (x != 0) if self.mask_zero else None
        return self.embedding(x)                                                 # (B,T) -> (B,T,C)

    def compute_mask(self, mask):
        return self._mask

    def _backward(self, dy):
        return self.embedding.backward(dy)                   # None: ids have no gradient

    def _config(self):
        return {"input_dim": self.input_dim, "output_dim": self.output_dim, "mask_zero": self.mask_zero,
                "input_length": self.input_length}


# --- recurrent layers -----------------------------------------------------------------------------

def _mask_runs(where: str, mask) -> tuple[np.ndarray, np.ndarray]:
    """``(start, lengths)`` (B,) of each row's run of real steps; an error unless it is one run."""
    m = to_numpy(mask).astype(bool)                                              # (B,T) on the host
    lengths = m.sum(axis=1)
    if (lengths == 0).any():
        raise ValueError(f"{where}: mask: sequence {int(np.argmin(lengths))} has no real step (all padding); "
                         f"drop empty sequences first")
    runs = (np.diff(m.astype(np.int8), axis=1, prepend=0) == 1).sum(axis=1)    # False -> True edges per row
    if (runs > 1).any():
        raise ValueError(f"{where}: mask: the real steps of sequence {int(np.argmax(runs > 1))} are not contiguous "
                         f"(padding inside a sequence); pad only in front or behind, as pad_sequences does")
    return m.argmax(axis=1), lengths


class _Recurrent(Layer):
    """SimpleRNN, LSTM and GRU: ``units``, ``return_sequences``; the module is built batch first.

    Shapes: x (B, T, C) -> (B, T, D*U) with ``return_sequences`` (zero at padded steps), else the
    final state (B, D*U); D = 2 inside ``Bidirectional``, whose backward half comes second.
    Parameters: ``rnn.<PyTorch names>`` (``rnn.weight_ih_l0``, ...).
    """

    _module = None            # nn.RNN / nn.LSTM / nn.GRU
    _gates = 1

    def __init__(self, units: int, return_sequences: bool = False, name: str | None = None, input_shape=None):
        super().__init__(name, input_shape)
        self.units = check_positive_int("units", units)
        self.return_sequences = check_flag("return_sequences", return_sequences)
        self.bidirectional = False                           # set by Bidirectional before it builds
        self._cache = None

    def _module_kwargs(self) -> dict:
        return {}

    def _build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name} ({type(self).__name__}): input: expected 3 dims (batch, steps, features), "
                             f"got shape {input_shape}")
        C, U, G = input_shape[-1], self.units, self._gates
        self.rnn = self._module(C, U, batch_first=True, bidirectional=self.bidirectional, **self._module_kwargs())
        for suffix in ("", "_reverse")[:2 if self.bidirectional else 1]:
            _reset(getattr(self.rnn, f"weight_ih_l0{suffix}"), _glorot_uniform((G * U, C), C, G * U, np.float32))
            _reset(getattr(self.rnn, f"weight_hh_l0{suffix}"), _orthogonal((G * U, U), np.float32))
            _reset(getattr(self.rnn, f"bias_ih_l0{suffix}"), self._initial_bias())
            _reset(getattr(self.rnn, f"bias_hh_l0{suffix}"), init.zeros((G * U,)))

    def _initial_bias(self):
        return init.zeros((self._gates * self.units,))

    def compute_output_shape(self, input_shape):
        D = 2 if self.bidirectional else 1
        return (*input_shape[:2], D * self.units) if self.return_sequences else (input_shape[0], D * self.units)

    def compute_mask(self, mask):
        return mask if self.return_sequences else None

    def call(self, x, mask=None):
        self._check_ndim(x, 3, "(batch, steps, features)")
        xp = array_module(("x", x), ("mask", mask))
        B, T, _ = x.shape
        rows = index = lengths = None
        if mask is not None:                                 # move each run of real steps to the front
            start, lengths = _mask_runs(f"{self.name} ({type(self).__name__})", mask)
            rows = xp.arange(B)[:, None]                                         # (B,1)
            index = xp.asarray((np.arange(lengths.max())[None, :] + start[:, None]) % T)   # (B,T') source steps
            x = x[rows, index]                                                   # (B,T,C) -> (B,T',C)
        output, state = self.rnn(x, lengths=lengths)                             # (B,T',D*U), (D,B,U) per state
        h_n = state[0] if isinstance(state, tuple) else state                    # LSTM: (h_n, c_n)
        self._cache = (rows, index, T, tuple(output.shape), tuple(h_n.shape))
        if not self.return_sequences:
            return h_n.swapaxes(0, 1).reshape(B, -1)         # (D,B,U) -> (B,D*U): [forward, backward]
        if mask is None:
            return output
        y = xp.zeros((B, T, output.shape[-1]), dtype=output.dtype)
        y[rows, index] = output                              # each step back where it came from
        return y

    def _backward(self, dy):
        rows, index, T, output_shape, state_shape = self._need_cache(self._cache)
        xp = array_module(("dy", dy))
        if self.return_sequences:
            doutput = dy if index is None else dy[rows, index]                   # the forward's scatter, reversed
            dh_n = None
        else:
            doutput = xp.zeros(output_shape, dtype=dy.dtype)                     # the output sequence was unused
            dh_n = dy.reshape(state_shape[1], state_shape[0], -1).swapaxes(0, 1)     # (B,D*U) -> (D,B,U)
        dx = self.rnn.backward(doutput, dh_n)                                    # (B,T',C)
        if index is None:
            return dx
        dx_full = xp.zeros((dx.shape[0], T, dx.shape[-1]), dtype=dx.dtype)
        dx_full[rows, index] = dx                            # gather x[rows, index]  =>  scatter back
        return dx_full

    def _config(self):
        return {"units": self.units, "return_sequences": self.return_sequences}


class SimpleRNN(_Recurrent):
    """``SimpleRNN(units, activation="tanh", return_sequences=False)`` over ``nn.RNN`` ("tanh" or "relu")."""

    _module = _RNN

    def __init__(self, units: int, activation: str = "tanh", return_sequences: bool = False,
                 name: str | None = None, input_shape=None):
        super().__init__(units, return_sequences, name, input_shape)
        self.activation = check_choice("activation", activation, ("tanh", "relu"))

    def _module_kwargs(self):
        return {"nonlinearity": self.activation}

    def _config(self):
        return {**super()._config(), "activation": self.activation}


class LSTM(_Recurrent):
    """``LSTM(units, return_sequences=False)`` over ``nn.LSTM`` (gates i, f, g, o; forget bias 1)."""

    _module = _LSTM
    _gates = 4

    def _initial_bias(self):
        U = self.units
        bias = np.zeros(4 * U, np.float32)
        bias[U:2 * U] = 1.0                                  # Keras' unit_forget_bias: remember by default
        return get_backend().asarray(bias)


class GRU(_Recurrent):
    """``GRU(units, return_sequences=False)`` over ``nn.GRU`` (Keras' ``reset_after=True`` variant)."""

    _module = _GRU
    _gates = 3


class Bidirectional(Layer):
    """``Bidirectional(layer, merge_mode="concat")``: runs a SimpleRNN/LSTM/GRU both ways.

    The wrapped layer builds ONE bidirectional module (parameters ``layer.rnn.*_l0`` and
    ``layer.rnn.*_l0_reverse``); outputs are concatenated, forward direction first.
    """

    def __init__(self, layer: _Recurrent, merge_mode: str = "concat", name: str | None = None, input_shape=None):
        if not isinstance(layer, _Recurrent):
            raise TypeError(f"layer: expected a SimpleRNN, LSTM or GRU layer, got {type(layer).__name__}")
        if layer.built:
            raise ValueError(f"layer: {layer.name!r} is already built; wrap a new, unbuilt layer")
        check_choice("merge_mode", merge_mode, ("concat",))
        super().__init__(name, input_shape)
        self.merge_mode = merge_mode
        layer.bidirectional = True
        self.layer = layer

    def _build(self, input_shape):
        self.layer.build(input_shape)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def compute_mask(self, mask):
        return self.layer.compute_mask(mask)

    def call(self, x, mask=None):
        return self.layer.forward(x, mask)

    def _backward(self, dy):
        return self.layer.backward(dy)

    def _config(self):
        return {"layer": {"class_name": type(self.layer).__name__, "config": self.layer.get_config()},
                "merge_mode": self.merge_mode}


# --- convolution and pooling --------------------------------------------------------------------

class Conv1D(Layer):
    """``Conv1D(filters, kernel_size, strides=1, padding="valid", dilation_rate=1, activation=None,
    use_bias=True)`` over ``nn.Conv1d``.

    Shapes: x (B, T, C) -> (B, T_out, F): "valid" T_out = floor((T - dilation_rate*(kernel_size-1) - 1)
    / strides) + 1, "same" T_out = T (strides 1 only). "same" pads (k-1)*dilation zeros, the extra
    one of an even kernel behind, as Keras: nn.Conv1d pads the larger amount on both sides and
    the surplus first output is dropped. Parameters ``conv.weight`` (F, C, kernel_size), ``conv.bias`` (F,).
    """

    def __init__(self, filters: int, kernel_size: int, strides: int = 1, padding: str = "valid",
                 dilation_rate: int = 1, activation: str | None = None, use_bias: bool = True,
                 name: str | None = None, input_shape=None):
        super().__init__(name, input_shape)
        self.filters = check_positive_int("filters", filters)
        self.kernel_size = check_positive_int("kernel_size", kernel_size)
        self.strides = check_positive_int("strides", strides)
        self.padding = check_choice("padding", padding, ("valid", "same"))
        self.dilation_rate = check_positive_int("dilation_rate", dilation_rate)
        if padding == "same" and strides != 1:
            raise ValueError(f"padding: 'same' is supported with strides=1 only, got strides={strides}")
        self.activation = activation
        self.act = _activation(activation)
        self.use_bias = check_flag("use_bias", use_bias)
        total = self.dilation_rate * (self.kernel_size - 1) if padding == "same" else 0
        self._pad = total - total // 2                       # on both sides; the larger (right) share
        self._drop = self._pad - total // 2                  # surplus outputs at the front: 0 or 1
        self._mask = None

    def _build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name} (Conv1D): input: expected 3 dims (batch, steps, channels), "
                             f"got shape {input_shape}")
        C, F, K = input_shape[-1], self.filters, self.kernel_size
        self.conv = Conv1d(C, F, K, stride=self.strides, padding=self._pad, dilation=self.dilation_rate,
                           bias=self.use_bias)
        _reset(self.conv.weight, _glorot_uniform((F, C, K), C * K, F * K, np.float32))
        _reset(self.conv.bias, init.zeros((F,)))

    def _length_out(self, T):
        if T is None or self.padding == "same":
            return T
        return conv_output_length(T, self.kernel_size, self.strides, 0, self.dilation_rate)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._length_out(input_shape[1]), self.filters)

    def call(self, x, mask=None):
        self._check_ndim(x, 3, "(batch, steps, channels)")
        xp = array_module(("x", x), ("mask", mask))
        y = self.conv(x.swapaxes(1, 2))[:, :, self._drop:]                      # (B,C,T) -> (B,F,T_out)
        y = y.swapaxes(1, 2)                                                     # (B,T_out,F)
        self._mask = None if mask is None else self._window_mask(mask, xp)
        return y if self.act is None else self.act(y)

    def _window_mask(self, mask, xp):
        """Output step l is real when its window covers at least one real input step."""
        if self.padding == "same":
            return mask
        T_out, s, d = self._length_out(mask.shape[1]), self.strides, self.dilation_rate
        out = xp.zeros((mask.shape[0], T_out), dtype=bool)
        for k in range(self.kernel_size):                    # tap k of window l reads step l*s + k*d
            out |= mask[:, k * d:k * d + (T_out - 1) * s + 1:s]
        return out

    def compute_mask(self, mask):
        return self._mask

    def _backward(self, dy):
        drop = self._drop
        xp = array_module(("dy", dy))
        if self.act is not None:
            dy = self.act.backward(dy)
        dy = dy.swapaxes(1, 2)                                                   # (B,T_out,F) -> (B,F,T_out)
        if drop:                                                                 # the dropped outputs: zero gradient
            dy = xp.concatenate([xp.zeros(dy.shape[:2] + (drop,), dtype=dy.dtype), dy], axis=2)
        return self.conv.backward(dy).swapaxes(1, 2)                             # (B,C,T) -> (B,T,C)

    def _config(self):
        return {"filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "dilation_rate": self.dilation_rate, "activation": self.activation,
                "use_bias": self.use_bias}


class _GlobalPooling1D(Layer):
    """(B, T, C) -> (B, C) over the steps, leaving out padded ones when a mask comes in."""

    _module = None

    def __init__(self, name: str | None = None, input_shape=None):
        super().__init__(name, input_shape)
        self.pool = self._module()

    def _build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name} ({type(self).__name__}): input: expected 3 dims (batch, steps, channels), "
                             f"got shape {input_shape}")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def compute_mask(self, mask):
        return None                                          # no time axis left

    def call(self, x, mask=None):
        self._check_ndim(x, 3, "(batch, steps, channels)")
        return self.pool(x.swapaxes(1, 2), mask=mask)                            # (B,C,T) -> (B,C)

    def _backward(self, dy):
        return self.pool.backward(dy).swapaxes(1, 2)                             # (B,C,T) -> (B,T,C)


class GlobalMaxPooling1D(_GlobalPooling1D):
    """Max over time (TextCNN's pooling), over ``nn.GlobalMaxPool1d``; padded steps never win."""

    _module = GlobalMaxPool1d


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over the real steps, over ``nn.GlobalAvgPool1d``."""

    _module = GlobalAvgPool1d


# --- Dropout and Dense ------------------------------------------------------------------------------

class Dropout(Layer):
    """``Dropout(rate, seed=None)`` over ``nn.Dropout``: active while training (``fit``), identity otherwise."""

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None, input_shape=None):
        super().__init__(name, input_shape)
        self.rate = check_probability("rate", rate)
        self.seed = seed
        self.dropout = _Dropout(self.rate, rng=seed)

    def call(self, x, mask=None):
        return self.dropout(x)

    def _backward(self, dy):
        return self.dropout.backward(dy)

    def _config(self):
        return {"rate": self.rate, "seed": self.seed}


class Dense(Layer):
    """``Dense(units, activation=None, use_bias=True)`` over ``nn.Linear`` and an activation module.

    Shapes: x (..., C) -> (..., units). ``activation``: None/"linear", "relu", "sigmoid", "tanh",
    "softmax" (over the last axis). ``logits`` keeps the pre-activation output of the last call:
    ``Sequential`` fuses a final sigmoid (softmax) with binary (sparse categorical) cross-entropy
    and differentiates from there with ``backward_logits``.
    Parameters ``linear.weight`` (units, C), ``linear.bias`` (units,).
    """

    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True,
                 name: str | None = None, input_shape=None):
        super().__init__(name, input_shape)
        self.units = check_positive_int("units", units)
        self.activation = activation
        self.act = _activation(activation)
        self.use_bias = check_flag("use_bias", use_bias)
        self.logits = None

    def _build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"{self.name} (Dense): input: expected at least 2 dims (batch, ..., features), "
                             f"got shape {input_shape}")
        C, U = input_shape[-1], self.units
        self.linear = Linear(C, U, bias=self.use_bias)
        _reset(self.linear.weight, _glorot_uniform((U, C), C, U, np.float32))
        _reset(self.linear.bias, init.zeros((U,)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def call(self, x, mask=None):
        self._check_ndim(x, 2, "(batch, ..., features)", at_least=True)
        self.logits = self.linear(x)                                             # (...,C) -> (...,U)
        return self.logits if self.act is None else self.act(self.logits)

    def _backward(self, dy):
        return self.backward_logits(dy if self.act is None else self.act.backward(dy))

    def backward_logits(self, dlogits):
        """The input gradient from the gradient of ``logits`` (the activation skipped)."""
        return self.linear.backward(dlogits)

    def _config(self):
        return {"units": self.units, "activation": self.activation, "use_bias": self.use_bias}


# --- configs ------------------------------------------------------------------------------------------

LAYERS = {cls.__name__: cls for cls in (Embedding, SimpleRNN, LSTM, GRU, Bidirectional, Conv1D, GlobalMaxPooling1D,
                                        GlobalAveragePooling1D, Dropout, Dense)}


def layer_from_config(spec: dict) -> Layer:
    """A new, unbuilt layer from ``{"class_name": "LSTM", "config": {...}}`` (an entry of
    ``Sequential.get_config()["layers"]``)."""
    if not isinstance(spec, dict) or set(spec) != {"class_name", "config"}:
        raise ValueError(f"layer config: expected {{'class_name': ..., 'config': {{...}}}}, got {spec!r}")
    cls = LAYERS.get(spec["class_name"])
    if cls is None:
        raise ValueError(f"layer config: unknown layer class {spec['class_name']!r}; known: {sorted(LAYERS)}")
    config = dict(spec["config"])
    if cls is Bidirectional:
        config["layer"] = layer_from_config(config["layer"])
    return cls(**config)
