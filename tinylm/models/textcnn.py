"""TextCNN (Kim, 2014, "Convolutional Neural Networks for Sentence Classification"): one
convolution layer with several kernel widths over word embeddings, max-over-time pooling, dropout
and a linear classifier::

    ids (B, T) --embedding--> (B, T, C) --zero the padding, transpose--> x (B, C, T)
        for each width k:   x --conv_k (C -> F, k-1 zeros padded on both sides)--> (B, F, T+k-1)
                              --max over the windows that touch a word--> --ReLU--> (B, F)
    concatenate the widths: z (B, F*W) --dropout--> --fc--> logits (B, num_classes)

Each width k is a detector of k-word phrases (F of them); max-over-time keeps each detector's
strongest match anywhere in the sentence, so the features do not depend on where it occurred or
on the sentence length.

The convolution is "wide": k-1 zero vectors on both sides of the sentence, as Kim's code pads, so
every word is seen at every position of a window, the first and last words included, and a phrase
shorter than k still fills windows. SST-2 trains on phrases of a few words, so this matters: with
"narrow" windows (inside the sentence only) a two-word phrase gives a width-5 detector no window.
With ``lengths`` the padding is exactly zero (its embeddings are zeroed whatever the ids there)
and only the n + k - 1 windows that touch one of the n words take part in the max, so a sentence
gives the same logits in any padded batch.

ReLU comes after the pooling: max and ReLU commute (ReLU is monotone), so ``relu(max(h))`` is
Kim's ``max(relu(h))`` exactly, at a T-th of the cost. The backward runs the same chain in
reverse; the widths' gradients into x add up, since every branch reads the same embeddings.

Every piece is a tinylm.nn module with its own derivation: derivations/embedding.md,
derivations/conv.md (conv1d, the masked global max pool, and this model's wiring),
derivations/activations.md, derivations/dropout.md, derivations/linear.md. Example:
examples/sentiment_textcnn.py. Test: tests/test_textcnn.py (gradcheck of every parameter).
"""
from __future__ import annotations

import numpy as np

from tinylm._checks import check_int, check_lengths, check_positive_int, check_probability, check_shape, is_real
from tinylm.backend import array_module
from tinylm.nn import init
from tinylm.nn.activation import ReLU
from tinylm.nn.container import ModuleList
from tinylm.nn.conv import Conv1d, GlobalMaxPool1d
from tinylm.nn.dropout import Dropout
from tinylm.nn.embedding import Embedding
from tinylm.nn.linear import Linear
from tinylm.nn.module import Module
from tinylm.ops.embedding import _normalize_padding_idx
from tinylm.random import module_rng

__all__ = ["TextCNN"]


class TextCNN(Module):
    """``TextCNN(vocab_size, num_classes=2, embed_dim=128, num_filters=100, kernel_sizes=(3, 4, 5),
    dropout=0.5, padding_idx=0, embed_init=0.25)``.

    ``logits = model(ids, lengths=None)``: ids (B, T) integers in [0, vocab_size); lengths (B,) ints
    in [1, T] (the words of row b are ids[b, :lengths[b]], padding after them) or None (every
    position is a word) -> logits (B, num_classes). ``model.backward(dlogits)``
    fills the parameters' gradients and returns None (ids are not differentiable).

    Parameters: ``embedding.weight`` (V, C), drawn U(-embed_init, embed_init) as Kim's randomly
    initialised CNN-rand (row ``padding_idx`` zero and never updated); ``convs.{i}.weight``
    (F, C, k_i), ``convs.{i}.bias`` (F,), ``fc.weight`` (num_classes, F*W), ``fc.bias`` with
    PyTorch's default initialisation. (PyTorch's N(0, 1) embeddings are four times larger: Adam's
    steps of about lr then move them too slowly, and the model fits the training phrases with what
    amount to fixed random word vectors. Measured on SST-2, narrow windows, 3 epochs: 0.776 dev
    accuracy with N(0, 1), 0.807 with U(-0.25, 0.25).)
    """

    def __init__(self, vocab_size: int, num_classes: int = 2, embed_dim: int = 128, num_filters: int = 100,
                 kernel_sizes=(3, 4, 5), dropout: float = 0.5, padding_idx: int | None = 0,
                 embed_init: float = 0.25, *, dtype=np.float32, rng=None):
        super().__init__()
        # Checked under this constructor's names before the layers check them under theirs.
        vocab_size = check_positive_int("vocab_size", vocab_size)
        embed_dim = check_positive_int("embed_dim", embed_dim)
        if isinstance(kernel_sizes, (str, bytes)) or not hasattr(kernel_sizes, "__iter__"):
            raise TypeError(f"kernel_sizes: expected a sequence of kernel widths (positive ints), e.g. (3, 4, 5), "
                            f"got {kernel_sizes!r}")
        kernel_sizes = tuple(kernel_sizes)
        if not kernel_sizes:
            raise ValueError("kernel_sizes: expected at least one kernel width, got none")
        kernel_sizes = tuple(check_positive_int("kernel_sizes", k) for k in kernel_sizes)
        _normalize_padding_idx(padding_idx, vocab_size)      # named here, before any layer is built
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.num_filters = check_positive_int("num_filters", num_filters)
        self.kernel_sizes = kernel_sizes
        if not is_real(embed_init) or not embed_init > 0:
            raise ValueError(f"embed_init: expected a number > 0, got {embed_init!r}")
        rng = module_rng(rng)
        self.embedding = Embedding(vocab_size, embed_dim, padding_idx=padding_idx, dtype=dtype, rng=rng)
        weight = init.uniform((vocab_size, embed_dim), embed_init, dtype, rng)
        if self.embedding.padding_idx is not None:
            weight[self.embedding.padding_idx] = 0
        self.embedding.weight.data = weight                  # construction time: Kim's initialisation
        self.convs = ModuleList([Conv1d(embed_dim, num_filters, k, padding=k - 1, dtype=dtype, rng=rng)
                                 for k in kernel_sizes])
        self.pools = ModuleList([GlobalMaxPool1d() for _ in kernel_sizes])
        self.relus = ModuleList([ReLU() for _ in kernel_sizes])
        self.dropout = Dropout(check_probability("dropout", dropout), rng=rng)
        self.fc = Linear(num_filters * len(kernel_sizes), num_classes, dtype=dtype, rng=rng)
        self._words = None

    def forward(self, ids, lengths=None):
        xp = array_module(("ids", ids))
        check_int("ids", ids)
        dims = check_shape("ids", ids, ("B", "T"))
        x = self.embedding(ids)                                                  # (B,T) -> (B,T,C)
        self._words = None
        if lengths is not None:
            lengths = check_lengths("lengths", lengths, dims["T"], dims["B"])    # host int64 (B,)
            self._words = (xp.arange(dims["T"]) < xp.asarray(lengths)[:, None])[:, :, None]   # (B,T,1)
            x = xp.where(self._words, x, 0)                                      # padding: zero vectors
        x = x.swapaxes(1, 2)                                                     # (B,T,C) -> (B,C,T)
        features = []
        for k, conv, pool, relu in zip(self.kernel_sizes, self.convs, self.pools, self.relus):
            h = conv(x)                                                          # (B,C,T) -> (B,F,T+k-1)
            real = None if lengths is None else lengths + k - 1                  # windows touching a word
            features.append(relu(pool(h, lengths=real)))                         # (B,F,T+k-1) -> (B,F)
        z = xp.concatenate(features, axis=1)                                     # (B,F*W)
        logits = self.fc(self.dropout(z))                                        # (B,F*W) -> (B,num_classes)
        return self._remember_output(logits)

    def backward(self, dlogits):
        self._check_output_grad("dlogits", dlogits)
        dz = self.dropout.backward(self.fc.backward(dlogits))                    # logits = fc(dropout(z))  (B,F*W)
        F = self.num_filters
        dx = None
        for i, (conv, pool, relu) in enumerate(zip(self.convs, self.pools, self.relus)):
            dh = pool.backward(relu.backward(dz[:, i * F:(i + 1) * F]))          # z = concat(relu(pool(h)), ...)
            dx_i = conv.backward(dh)                                             # h = conv(x)  (B,C,T)
            dx = dx_i if dx is None else dx + dx_i                               # every width reads the same x
        dx = dx.swapaxes(1, 2)                                                   # x = x.swapaxes(1, 2)  (B,T,C)
        if self._words is not None:
            dx = array_module(("dx", dx)).where(self._words, dx, 0)              # zeroed padding: no gradient
        self.embedding.backward(dx)                                              # x = embedding(ids)
        return None

    def extra_repr(self) -> str:
        return f"kernel_sizes={self.kernel_sizes}, num_filters={self.num_filters}, num_classes={self.num_classes}"
