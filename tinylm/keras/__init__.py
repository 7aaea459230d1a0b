"""A Keras-style API over tinylm: ``Sequential`` models of thin layer wrappers, ``compile``,
``fit``, ``evaluate``, ``predict``, ``summary``, ``save`` / ``load_model``.

Keras programs run with their imports changed::

    from tinylm.keras.layers import Embedding, LSTM, Dense      # was: tensorflow.keras.layers
    from tinylm.keras.models import Sequential                  # was: tensorflow.keras.models

Every layer is a tinylm.nn module underneath (one implementation of each layer), so each has the
explicit backward pass, derivation and gradient check of that module. See layers.py and models.py.
"""
from tinylm.keras import callbacks, layers, models
from tinylm.keras.callbacks import Callback, EarlyStopping, History, ProgbarLogger
from tinylm.keras.layers import (GRU, LSTM, Bidirectional, Conv1D, Dense, Dropout, Embedding, GlobalAveragePooling1D,
                                 GlobalMaxPooling1D, Layer, SimpleRNN)
from tinylm.keras.models import Sequential, load_model

__all__ = ["callbacks", "layers", "models", "Callback", "EarlyStopping", "History", "ProgbarLogger", "Layer",
           "Embedding", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "Conv1D", "GlobalMaxPooling1D",
           "GlobalAveragePooling1D", "Dropout", "Dense", "Sequential", "load_model"]
