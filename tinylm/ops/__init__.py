"""Functional ops: ``out, cache = <op>_forward(...)`` and ``grads = <op>_backward(dout, cache)``.

No state and no parameters live here; each family has one file, one derivation in
derivations/ and one gradient-check test in tests/.
"""
from tinylm.ops.matmul import matmul
from tinylm.ops.linear import LinearCache, linear_backward, linear_forward

__all__ = ["matmul", "LinearCache", "linear_forward", "linear_backward"]
