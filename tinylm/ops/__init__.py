"""Functional ops: ``out, cache = <op>_forward(...)`` and ``grads = <op>_backward(dout, cache)``.

No state and no parameters live here; each family has one file, one derivation in
derivations/ and one gradient-check test in tests/.
"""
from tinylm.ops.matmul import matmul
from tinylm.ops.linear import (LinearCache, LinearGELUCache, linear_backward, linear_forward, linear_gelu_backward,
                               linear_gelu_forward)
from tinylm.ops.layernorm import LayerNormCache, layernorm_backward, layernorm_forward
from tinylm.ops.embedding import EmbeddingCache, embedding_backward, embedding_forward, scatter_add
from tinylm.ops.dropout import DropoutCache, dropout_backward, dropout_forward
from tinylm.ops.activations import (gelu, gelu_backward, gelu_forward, relu_backward, relu_forward, sigmoid,
                                    sigmoid_backward, sigmoid_forward, tanh_backward, tanh_forward)
from tinylm.ops.softmax import (log_softmax, log_softmax_backward, log_softmax_forward, softmax, softmax_backward,
                                softmax_forward)
from tinylm.ops.losses import (bce_with_logits_backward, bce_with_logits_forward, cross_entropy_backward,
                               cross_entropy_forward, mse_backward, mse_forward)
from tinylm.ops.attention import AttentionCache, attention_backward, attention_forward, attention_probs

__all__ = ["matmul", "LinearCache", "linear_forward", "linear_backward", "LinearGELUCache", "linear_gelu_forward",
           "linear_gelu_backward",
           "LayerNormCache", "layernorm_forward", "layernorm_backward",
           "EmbeddingCache", "embedding_forward", "embedding_backward", "scatter_add",
           "DropoutCache", "dropout_forward", "dropout_backward",
           "relu_forward", "relu_backward", "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
           "gelu_forward", "gelu_backward", "sigmoid", "gelu",
           "softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward", "softmax",
           "log_softmax", "cross_entropy_forward", "cross_entropy_backward", "bce_with_logits_forward",
           "bce_with_logits_backward", "mse_forward", "mse_backward",
           "AttentionCache", "attention_forward", "attention_backward", "attention_probs"]
