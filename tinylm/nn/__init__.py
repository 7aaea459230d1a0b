"""Modules: layers that own ``Parameter``s and wrap the functional ops of tinylm.ops."""
from tinylm.nn.module import Module, Parameter
from tinylm.nn.linear import Linear, LinearGELU
from tinylm.nn.normalization import LayerNorm
from tinylm.nn.embedding import Embedding
from tinylm.nn.dropout import Dropout
from tinylm.nn.container import ModuleList, Sequential
from tinylm.nn.activation import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinylm.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from tinylm.nn.attention import MultiheadAttention
from tinylm.nn.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from tinylm.nn.soft_attention import AdditiveAttention, HardAttention, LuongAttention
from tinylm.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from tinylm.nn.conv import Conv1d, GlobalAvgPool1d, GlobalMaxPool1d, MaxPool1d
from tinylm.nn.transformer import (TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
                                   TransformerEncoderLayer)

__all__ = ["Module", "Parameter", "Linear", "LinearGELU", "LayerNorm", "Embedding", "Dropout", "Sequential", "ModuleList",
           "ReLU", "Tanh", "Sigmoid", "GELU", "Softmax", "LogSoftmax", "CrossEntropyLoss", "BCEWithLogitsLoss",
           "MSELoss",
           "MultiheadAttention", "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding", "AdditiveAttention",
           "LuongAttention", "HardAttention",
           "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "Conv1d", "MaxPool1d", "GlobalMaxPool1d",
           "GlobalAvgPool1d",
           "TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder", "TransformerDecoder"]
