"""Reading and writing checkpoints: safetensors files (no pickle, no extra package) and whole training states."""
from tinylm.io.checkpoint import (CheckpointError, load, load_training_state, load_with_metadata, save,
                                  save_training_state)

__all__ = ["save", "load", "load_with_metadata", "CheckpointError", "save_training_state", "load_training_state"]
