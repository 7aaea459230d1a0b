"""Checkpoints in the safetensors format, read and written here with the standard library and NumPy.

A safetensors file is three parts::

    8 bytes   N, the length of the header: an unsigned 64-bit little-endian integer
    N bytes   the header: a UTF-8 JSON object (padded with spaces)
                {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
                 "__metadata__": {"<key>": "<string>", ...}}                 (optional)
    the rest  the data buffer: each tensor's raw little-endian bytes in C order, at [begin, end)

Loading parses JSON and copies bytes, so unlike a pickle it can never run code, and it needs no
package beyond NumPy. Files interoperate both ways with the ``safetensors`` package (and so with
PyTorch and Hugging Face checkpoints). ``load`` checks the whole header before it reads any data
(known dtype, byte counts matching shapes, offsets inside the buffer, tensors tiling it without
overlaps, gaps or trailing bytes) and raises :class:`CheckpointError` on the first problem, so a
truncated or corrupt file never comes back half-loaded. ``save`` is atomic: it writes a temporary
file in the same directory, flushes and fsyncs it, then ``os.replace``s it over the target, so a
crash mid-write leaves the old checkpoint intact.

dtypes: F16 F32 F64, I8 I16 I32 I64, U8 U16 U32 U64, BOOL both ways; BF16 (Hugging Face
checkpoints) loads as float32 (exact: a bf16 is the top half of a float32); NumPy has no bf16 to save.

``save_training_state`` / ``load_training_state`` put a whole run in one such file: the model's
parameters as ``model.<name>``, the optimizer's state arrays as ``optim.state.<index>.<name>``, and
in the metadata (JSON strings) the step, the optimizer's hyperparameters and scalar state, the
caller's ``extra`` (e.g. a schedule's ``state_dict()``) and the global RNG state, so a resumed run
continues bit for bit.

Tests: tests/test_checkpoint.py.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import struct
from typing import Any, Mapping

import numpy as np

from tinylm.backend import to_numpy
from tinylm.random import default_rng

__all__ = ["CheckpointError", "save", "load", "load_with_metadata", "save_training_state", "load_training_state"]

# safetensors dtype code -> NumPy dtype, little-endian as stored.
_DTYPES = {
    "BOOL": np.dtype("|b1"), "U8": np.dtype("|u1"), "I8": np.dtype("|i1"),
    "U16": np.dtype("<u2"), "I16": np.dtype("<i2"), "F16": np.dtype("<f2"),
    "U32": np.dtype("<u4"), "I32": np.dtype("<i4"), "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"), "I64": np.dtype("<i8"), "F64": np.dtype("<f8"),
}
_LOAD_ONLY = {"BF16": np.dtype("<u2")}                               # read as raw 16 bits, widened to float32
_CODE = {(dt.kind, dt.itemsize): code for code, dt in _DTYPES.items()}  # (kind, bytes) -> code, for saving
_MAX_HEADER = 100_000_000                                            # the reference implementation's limit
TRAINING_STATE_FORMAT = "tinylm.training_state/1"


class CheckpointError(ValueError):
    """The file is not a valid safetensors checkpoint (truncated, corrupt, or not one at all)."""


def _check_path(path) -> str:
    """``path`` as a str: a str or os.PathLike naming a file, not a directory."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike file path, got {type(path).__name__}")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"path: {path!r} is a directory; expected a file path "
                                f"(e.g. {os.path.join(path, 'model.safetensors')!r})")
    return path


def _check_model_and_optimizer(model, optimizer) -> None:
    from tinylm.nn.module import Module              # here: tinylm.nn and tinylm.optim need not load for io
    from tinylm.optim.optimizer import Optimizer
    if not isinstance(model, Module):
        raise TypeError(f"model: expected a tinylm Module, got {type(model).__name__}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer: expected None or a tinylm.optim optimizer, got {type(optimizer).__name__}")


# --- writing ---

def save(path, tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> None:
    """Write ``tensors`` (name -> NumPy or CuPy array) and optional ``metadata`` (str -> str) to ``path``.

    CuPy arrays are copied to the host. The write is atomic (see the module docstring).
    """
    path = _check_path(path)
    head, arrays = _encode(tensors, metadata)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: directory {directory!r} does not exist (for {path!r})")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    # os.open with mode 0o666 lets the umask decide the permissions, as for any new file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            for a in arrays:
                f.write(a.data)                     # the array's bytes, without a copy
            f.flush()
            os.fsync(f.fileno())                    # on disk before it takes the target's name
        os.replace(tmp, path)                       # atomic: readers see the old file or the new one
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_directory(directory)                     # make the rename itself durable


def _encode(tensors: Mapping[str, Any], metadata: Mapping[str, str] | None) -> tuple[bytes, list[np.ndarray]]:
    """The 8-byte length + padded JSON header, and the arrays (little-endian, C order) in file order."""
    if not isinstance(tensors, Mapping):
        raise TypeError(f"tensors: expected a dict of name -> array, got {type(tensors).__name__}")
    entries = []
    for name, x in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensors: names must be str, got {type(name).__name__} {name!r}")
        if name == "__metadata__":
            raise ValueError("tensors: the name '__metadata__' is reserved for the metadata")
        if not (hasattr(x, "dtype") and hasattr(x, "shape")):
            raise TypeError(f"tensors[{name!r}]: expected a NumPy or CuPy array, got {type(x).__name__}")
        a = to_numpy(x)
        code = _CODE.get((a.dtype.kind, a.dtype.itemsize))
        if code is None:
            raise TypeError(f"tensors[{name!r}]: dtype {a.dtype} has no safetensors code; supported: "
                            f"float16/32/64, int8/16/32/64, uint8/16/32/64, bool")
        entries.append((name, code, a.astype(_DTYPES[code], order="C", copy=False)))
    # Largest items first (then by name), as the reference writer does: every tensor then starts
    # at a multiple of its item size, since the header is padded to a multiple of 8.
    entries.sort(key=lambda e: (-e[2].dtype.itemsize, e[0]))
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = _check_metadata(metadata, "metadata", TypeError)
    offset = 0
    for name, code, a in entries:
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)                       # pad: the data buffer starts 8-byte aligned
    return struct.pack("<Q", len(raw)) + raw, [a for _, _, a in entries]


def _check_metadata(metadata: Any, where: str, error: type[Exception]) -> dict[str, str]:
    if not isinstance(metadata, Mapping):
        raise error(f"{where}: expected a dict of str -> str, got {type(metadata).__name__}")
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise error(f"{where}: expected str -> str, got {type(k).__name__} {k!r} -> {type(v).__name__}")
    return dict(metadata)


def _fsync_directory(directory: str) -> None:
    if not hasattr(os, "O_DIRECTORY"):              # Windows: directories cannot be fsynced
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- reading ---

def load(path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file, as host NumPy arrays (name -> array, in file order)."""
    return load_with_metadata(path)[0]


def load_with_metadata(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file; ``metadata`` is ``{}`` when the file has none.

    Raises :class:`CheckpointError` for a truncated or corrupt file, before returning anything.
    """
    path = _check_path(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        entries, metadata, data_start = _read_header(f, size, path)
        tensors = {}
        for name, code, shape, begin, end in entries:
            tensors[name] = _read_tensor(f, data_start + begin, end - begin, code, shape, f"{path}: tensor {name!r}")
    return tensors, metadata


def _read_header(f, size: int, path: str):
    """Parse and check the header; returns ``([(name, code, shape, begin, end)] by offset, metadata, data_start)``."""
    if size < 8:
        raise CheckpointError(f"{path}: truncated: {size} bytes, too short for the 8-byte header length")
    (n,) = struct.unpack("<Q", f.read(8))
    if n > size - 8:
        raise CheckpointError(f"{path}: header length {n} exceeds the {size - 8} bytes that follow it "
                              f"(truncated, or not a safetensors file)")
    if n > _MAX_HEADER:
        raise CheckpointError(f"{path}: header length {n} exceeds the limit of {_MAX_HEADER} bytes")
    try:
        header = json.loads(f.read(n).decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, json.JSONDecodeError, _DuplicateKey) as e:
        raise CheckpointError(f"{path}: the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: the header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else _check_metadata(metadata, f"{path}: __metadata__", CheckpointError)
    buffer_len = size - 8 - n
    entries = []
    for name, info in header.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"{where}: expected {{'dtype', 'shape', 'data_offsets'}}, got {info!r}")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        dtype = _DTYPES.get(code, _LOAD_ONLY.get(code))
        if dtype is None:
            raise CheckpointError(f"{where}: unknown dtype {code!r}; known: {sorted(_DTYPES) + sorted(_LOAD_ONLY)}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise CheckpointError(f"{where}: shape must be a list of ints >= 0, got {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= buffer_len):
            raise CheckpointError(f"{where}: data_offsets {offsets!r} out of range: expected [begin, end] with "
                                  f"0 <= begin <= end <= {buffer_len}, the size of the data buffer")
        begin, end = offsets
        need = math.prod(shape) * dtype.itemsize
        if end - begin != need:
            raise CheckpointError(f"{where}: holds {end - begin} bytes but dtype {code} and shape {tuple(shape)} "
                                  f"need {need}")
        entries.append((name, code, tuple(shape), begin, end))
    entries.sort(key=lambda e: (e[3], e[4]))
    pos, prev = 0, None
    for name, _, _, begin, end in entries:
        if begin < pos:
            raise CheckpointError(f"{path}: tensor {name!r} at bytes [{begin}, {end}) overlaps tensor {prev!r}")
        if begin > pos:
            raise CheckpointError(f"{path}: gap in the data buffer: bytes [{pos}, {begin}) belong to no tensor")
        pos, prev = end, name
    if pos != buffer_len:
        raise CheckpointError(f"{path}: the tensors cover {pos} bytes but the data buffer has {buffer_len} "
                              f"(trailing bytes)")
    return entries, metadata, 8 + n


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(f"duplicate key {k!r}")
        out[k] = v
    return out


def _read_tensor(f, offset: int, nbytes: int, code: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """Read one tensor's bytes straight into a new array of its dtype (BF16 widened to float32)."""
    out = np.empty(shape, dtype=_DTYPES.get(code, _LOAD_ONLY.get(code)))
    f.seek(offset)
    got = f.readinto(out.reshape(-1).view(np.uint8))
    if got != nbytes:
        raise CheckpointError(f"{where}: read {got} of {nbytes} bytes (the file changed while it was read?)")
    if code == "BOOL" and out.size and out.view(np.uint8).max() > 1:
        raise CheckpointError(f"{where}: BOOL bytes must be 0 or 1")
    if code == "BF16":
        out = (out.astype(np.uint32) << 16).view(np.float32)     # bf16 bits are the top 16 of a float32
    if not out.dtype.isnative:                                   # big-endian host
        out = out.astype(out.dtype.newbyteorder("="))
    return out


# --- training state ---

def save_training_state(path, model, optimizer=None, step: int = 0, extra: dict | None = None) -> None:
    """Save everything needed to resume training exactly: parameters, optimizer state, step, RNG, ``extra``.

    ``model`` is a ``tinylm.nn.Module``; ``optimizer`` a ``tinylm.optim`` optimizer over its
    parameters; ``extra`` a JSON-serialisable dict of anything else (a schedule's ``state_dict()``,
    the data loader's position, ...).
    """
    path = _check_path(path)
    _check_model_and_optimizer(model, optimizer)
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step: expected an int >= 0, got {step!r}")
    step = int(step)
    tensors = {f"model.{name}": p.data for name, p in model.named_parameters()}
    try:
        metadata = {"format": TRAINING_STATE_FORMAT, "step": str(step), "extra": json.dumps(extra),
                    "rng_state": json.dumps(default_rng().bit_generator.state)}
    except TypeError as e:
        raise TypeError(f"extra: must be JSON-serialisable (numbers, strings, lists, dicts): {e}") from None
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, entry in sd["state"].items():
            for key, value in entry.items():
                if hasattr(value, "shape"):
                    tensors[f"optim.state.{index}.{key}"] = value
                else:
                    scalars.setdefault(str(index), {})[key] = value
        metadata["optimizer"] = json.dumps({"param_groups": sd["param_groups"], "scalars": scalars})
    save(path, tensors, metadata)


def load_training_state(path, model, optimizer=None) -> dict[str, Any]:
    """Restore a :func:`save_training_state` file into ``model`` (and ``optimizer``) and the global RNG.

    Returns ``{"step": int, "extra": ...}``. Everything is checked before anything changes: a
    mismatched model or optimizer raises and leaves model, optimizer and RNG as they were.
    """
    path = _check_path(path)
    _check_model_and_optimizer(model, optimizer)
    tensors, metadata = load_with_metadata(path)
    if metadata.get("format") != TRAINING_STATE_FORMAT:
        raise CheckpointError(f"{path}: not a tinylm training state (metadata 'format' is "
                              f"{metadata.get('format')!r}); use tinylm.io.load for plain tensor files")
    try:
        step, extra = int(metadata["step"]), json.loads(metadata["extra"])
        rng_state = json.loads(metadata["rng_state"])
        optim_meta = json.loads(metadata["optimizer"]) if "optimizer" in metadata else None
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt training-state metadata ({type(e).__name__}: {e})") from None
    probe = type(default_rng().bit_generator)()
    try:
        probe.state = rng_state                                 # validates it without touching the real one
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: invalid RNG state ({e})") from None

    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    own = dict(model.named_parameters())
    missing = sorted(set(own) - set(model_state))
    unexpected = sorted(set(model_state) - set(own))
    mismatched = [f"{n}: file {model_state[n].shape} vs model {own[n].shape}"
                  for n in own if n in model_state and model_state[n].shape != own[n].shape]
    if missing or unexpected or mismatched:
        raise ValueError(f"load_training_state: {path} does not match the model: missing {missing}, "
                         f"unexpected {unexpected}, shape mismatches {mismatched}")
    if optimizer is not None:
        if optim_meta is None:
            raise CheckpointError(f"{path}: holds no optimizer state; pass optimizer=None")
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optim.state."):
                index, name = key[len("optim.state."):].split(".", 1)
                state.setdefault(int(index), {})[name] = value
        for index, entry in optim_meta["scalars"].items():
            state.setdefault(int(index), {}).update(entry)
        optimizer.load_state_dict({"state": state, "param_groups": optim_meta["param_groups"]})  # checks first
    model.load_state_dict(model_state)
    default_rng().bit_generator.state = rng_state
    return {"step": step, "extra": extra}
