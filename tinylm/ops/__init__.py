"""Functional ops: ``out, cache = <op>_forward(...)`` and ``grads = <op>_backward(dout, cache)``.

No state and no parameters live here; each family has one file, one derivation in
derivations/ and one gradient-check test in tests/.
"""
from tinylm.ops.matmul import matmul
from tinylm.ops.linear import LinearCache, linear_backward, linear_forward
from tinylm.ops.layernorm import LayerNormCache, layernorm_backward, layernorm_forward
from tinylm.ops.embedding import EmbeddingCache, embedding_backward, embedding_forward, scatter_add
from tinylm.ops.dropout import DropoutCache, dropout_backward, dropout_forward

__all__ = ["matmul", "LinearCache", "linear_forward", "linear_backward",
           "LayerNormCache", "layernorm_forward", "layernorm_backward",
           "EmbeddingCache", "embedding_forward", "embedding_backward", "scatter_add",
           "DropoutCache", "dropout_forward", "dropout_backward"]
