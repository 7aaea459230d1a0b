"""tinylm: language models from scratch in NumPy, every forward and backward pass written out.

Layers (imports only go down): models -> nn -> ops -> backend; optim, io, tokenizers, gradcheck
are leaf utilities. See README.md and derivations/README.md.
"""
from tinylm.backend import (Backend, BackendMismatchError, BackendUnavailableError, get_backend, set_backend,
                            to_numpy, use_backend)
from tinylm.random import manual_seed
from tinylm import ops, nn, gradcheck, optim, io  # noqa: E402  (ops registers the reference kernels)
from tinylm.io import load, save

__version__ = "0.1.0"

__all__ = ["Backend", "BackendMismatchError", "BackendUnavailableError", "get_backend", "set_backend",
           "use_backend", "to_numpy", "manual_seed", "ops", "nn", "gradcheck", "optim", "io", "save", "load", "__version__"]
