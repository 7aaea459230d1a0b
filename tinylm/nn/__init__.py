"""Modules: layers that own ``Parameter``s and wrap the functional ops of tinylm.ops."""
from tinylm.nn.module import Module, Parameter
from tinylm.nn.linear import Linear

__all__ = ["Module", "Parameter", "Linear"]
