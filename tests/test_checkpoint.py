"""safetensors checkpoints: round trips for every dtype, the byte layout, interop with the
``safetensors`` package both ways, atomic writes, corrupt files, and resuming a training run
bit for bit from a saved training state."""
import json
import os
import struct

import numpy as np
import pytest

import tinylm
from tinylm.io import (CheckpointError, load, load_training_state, load_with_metadata, save,
                       save_training_state)
from tinylm.nn.linear import Linear
from tinylm.optim import AdamW, CosineWithWarmup, clip_grad_norm_

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
          np.uint8, np.uint16, np.uint32, np.uint64, np.bool_]


def sample(dtype, shape, rng):
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return rng.standard_normal(shape).astype(dtype)


def craft(header: dict, data: bytes, pad: bool = True) -> bytes:
    """A file laid out by hand from the format description (independent of the writer under test)."""
    raw = json.dumps(header).encode()
    if pad:
        raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


# --- round trips and layout ---

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip_every_dtype(tmp_path, rng, dtype):
    tensors = {"matrix": sample(dtype, (3, 4), rng), "scalar": sample(dtype, (), rng),
               "empty": sample(dtype, (0, 5), rng), "strided": sample(dtype, (4, 3), rng).T}
    save(tmp_path / "a.safetensors", tensors)
    got = load(tmp_path / "a.safetensors")
    assert set(got) == set(tensors)
    for name, x in tensors.items():
        assert got[name].dtype == x.dtype and got[name].shape == x.shape, name
        np.testing.assert_array_equal(got[name], x)
        assert got[name].flags.writeable and got[name].flags.owndata


def test_byte_layout_and_metadata(tmp_path):
    a, b = np.arange(3, dtype=np.float64), np.array([[1, 2]], dtype=np.int16)
    save(tmp_path / "a.safetensors", {"b": b, "a": a}, metadata={"step": "7", "note": "héllo"})
    blob = (tmp_path / "a.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    assert n % 8 == 0 and header["__metadata__"] == {"step": "7", "note": "héllo"}
    assert header["a"] == {"dtype": "F64", "shape": [3], "data_offsets": [0, 24]}   # wider dtypes first
    assert header["b"] == {"dtype": "I16", "shape": [1, 2], "data_offsets": [24, 28]}
    data = blob[8 + n:]
    assert data == a.astype("<f8").tobytes() + b.astype("<i2").tobytes()
    tensors, meta = load_with_metadata(tmp_path / "a.safetensors")
    assert meta == {"step": "7", "note": "héllo"} and list(tensors) == ["a", "b"]
    save(tmp_path / "b.safetensors", {"a": a})
    assert load_with_metadata(tmp_path / "b.safetensors")[1] == {}


def test_big_endian_input_is_stored_little_endian(tmp_path):
    x = np.arange(4, dtype=">i4")
    save(tmp_path / "a.safetensors", {"x": x})
    got = load(tmp_path / "a.safetensors")["x"]
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, [0, 1, 2, 3])


def test_bf16_loads_as_float32(tmp_path):
    values = np.array([1.0, -2.5, 0.15625, 2.0**100, -0.0, np.inf], dtype=np.float32)   # all exact in bf16
    top_halves = (values.view(np.uint32) >> 16).astype("<u2")
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(craft({"w": {"dtype": "BF16", "shape": [6], "data_offsets": [0, 12]}}, top_halves.tobytes()))
    got = load(path)["w"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), values.view(np.uint32))


# --- interop with the safetensors package ---

def test_safetensors_package_reads_ours(tmp_path, rng):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open
    tensors = {np.dtype(d).name: sample(d, (2, 3), rng) for d in DTYPES}
    tensors["scalar"] = np.float32(2.5).reshape(())
    save(tmp_path / "ours.safetensors", tensors, metadata={"k": "v"})
    got = safetensors_numpy.load_file(str(tmp_path / "ours.safetensors"))
    for name, x in tensors.items():
        assert got[name].dtype == x.dtype
        np.testing.assert_array_equal(got[name], x)
    with safe_open(str(tmp_path / "ours.safetensors"), framework="np") as f:
        assert f.metadata() == {"k": "v"}


def test_we_read_the_safetensors_package(tmp_path, rng):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {np.dtype(d).name: sample(d, (3, 2), rng) for d in DTYPES}
    tensors["empty"] = np.zeros((0, 2), np.float32)
    safetensors_numpy.save_file(tensors, str(tmp_path / "theirs.safetensors"), metadata={"a": "1"})
    got, meta = load_with_metadata(tmp_path / "theirs.safetensors")
    assert meta == {"a": "1"} and set(got) == set(tensors)
    for name, x in tensors.items():
        assert got[name].dtype == x.dtype
        np.testing.assert_array_equal(got[name], x)


# --- atomic writes ---

def test_failed_write_leaves_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    save(path, {"w": np.ones(3, np.float32)})

    def crash(fd):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "fsync", crash)           # fails after the new bytes were written to the temp file
    with pytest.raises(OSError, match="simulated"):
        save(path, {"w": np.zeros(1000, np.float32)})
    monkeypatch.undo()
    np.testing.assert_array_equal(load(path)["w"], np.ones(3, np.float32))
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]          # no temp file left behind


def test_bad_input_to_save_writes_nothing(tmp_path):
    path = tmp_path / "x.safetensors"
    cases = [({1: np.zeros(1)}, None, TypeError, "names must be str, got int 1"),
             ({"__metadata__": np.zeros(1)}, None, ValueError, "reserved"),
             ({"w": [1.0, 2.0]}, None, TypeError, r"tensors\['w'\]: expected a NumPy or CuPy array, got list"),
             ({"w": np.zeros(2, np.complex64)}, None, TypeError, r"tensors\['w'\]: dtype complex64 has no safetensors"),
             ({"w": np.zeros(2)}, {"step": 3}, TypeError, r"metadata: expected str -> str, got str 'step' -> int"),
             ([np.zeros(2)], None, TypeError, "tensors: expected a dict")]
    for tensors, metadata, exc, match in cases:
        with pytest.raises(exc, match=match):
            save(path, tensors, metadata)
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="directory .*missing.* does not exist"):
        save(tmp_path / "missing" / "x.safetensors", {"w": np.zeros(1)})


# --- corrupt and truncated files ---

GOOD = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]}}
DATA = np.float32([1, 2]).tobytes() + np.int64([3]).tobytes()


def with_entry(name, **fields):
    return {**GOOD, name: {**GOOD[name], **fields}}


@pytest.mark.parametrize("blob, match", [
    (b"\x10\x00\x00", "truncated: 3 bytes, too short for the 8-byte header length"),
    (struct.pack("<Q", 10**12) + b"{}", "header length 1000000000000 exceeds the 2 bytes"),
    (craft(GOOD, DATA)[:-3], r"tensor 'b': data_offsets \[8, 16\] out of range: .* <= 13"),
    (struct.pack("<Q", 8) + b"{not jso", "the header is not valid JSON"),
    (struct.pack("<Q", 2) + b"\xff\xfe", "the header is not valid JSON"),
    (craft([1, 2], b""), "the header must be a JSON object, got list"),
    (craft(with_entry("a", dtype="F128"), DATA), "tensor 'a': unknown dtype 'F128'"),
    (craft(with_entry("a", shape=[3]), DATA), r"tensor 'a': holds 8 bytes but dtype F32 and shape \(3,\) need 12"),
    (craft(with_entry("a", shape=[-2]), DATA), "shape must be a list of ints >= 0"),
    (craft(with_entry("b", data_offsets=[8, 24]), DATA), "out of range"),
    (craft(with_entry("b", data_offsets=[4, 12]), DATA), "tensor 'b' at bytes \\[4, 12\\) overlaps tensor 'a'"),
    (craft(with_entry("b", data_offsets=[8, 16]), DATA + b"\0" * 8), r"cover 16 bytes but the data buffer has 24"),
    (craft({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, DATA[:8]), r"gap .* bytes \[0, 4\)"),
    (craft({**GOOD, "c": {"dtype": "F32", "shape": [], "data_offsets": [0]}}, DATA),
     r"data_offsets \[0\] out of range"),
    (craft({**GOOD, "c": {"dtype": "F32", "shape": []}}, DATA), "expected {'dtype', 'shape', 'data_offsets'}"),
    (craft({**GOOD, "__metadata__": {"k": 1}}, DATA), "__metadata__: expected str -> str"),
    (craft({"t": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x07"), "BOOL bytes must be 0 or 1"),
    (struct.pack("<Q", 48) + (b'{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"a":1}'[:48]), "not valid JSON"),
])
def test_corrupt_file_raises_checkpoint_error(tmp_path, blob, match):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(blob)
    with pytest.raises(CheckpointError, match=match):
        load(path)


def test_duplicate_names_are_rejected(tmp_path):
    raw = b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'
    (tmp_path / "dup.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + b"\x01")
    with pytest.raises(CheckpointError, match="duplicate key 'a'"):
        load(tmp_path / "dup.safetensors")


def test_crafted_good_file_loads(tmp_path):
    (tmp_path / "ok.safetensors").write_bytes(craft(GOOD, DATA, pad=False))   # padding is optional
    got = load(tmp_path / "ok.safetensors")
    np.testing.assert_array_equal(got["a"], [1, 2])
    np.testing.assert_array_equal(got["b"], [3])


# --- training state ---

def make_run(seed):
    tinylm.manual_seed(seed)
    model = Linear(4, 3)
    opt = AdamW([{"params": [model.weight]}, {"params": [model.bias], "weight_decay": 0.0}], lr=3e-2)
    sched = CosineWithWarmup(opt, warmup_steps=2, total_steps=10, min_lr=1e-3)
    return model, opt, sched


def train(model, opt, sched, steps):
    rng = tinylm.random.default_rng()                 # the batches come from the global generator
    w_true = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
    for _ in range(steps):
        x = rng.standard_normal((8, 4)).astype(np.float32)
        y = model(x)
        model.zero_grad()
        model.backward(2 * (y - x @ w_true.T) / y.size)   # mean squared error
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()


def test_resumed_run_is_bit_identical(tmp_path):
    model, opt, sched = make_run(0)
    train(model, opt, sched, 10)                                     # in one go

    model_a, opt_a, sched_a = make_run(0)
    train(model_a, opt_a, sched_a, 5)
    save_training_state(tmp_path / "run.safetensors", model_a, opt_a, step=5,
                        extra={"scheduler": sched_a.state_dict(), "note": "half way"})
    model_b, opt_b, sched_b = make_run(1234)                         # fresh objects, other weights and RNG
    info = load_training_state(tmp_path / "run.safetensors", model_b, opt_b)
    sched_b.load_state_dict(info["extra"]["scheduler"])
    assert info["step"] == 5 and info["extra"]["note"] == "half way"
    train(model_b, opt_b, sched_b, 5)

    for (name, p), (_, q) in zip(model.named_parameters(), model_b.named_parameters()):
        assert p.data.dtype == q.data.dtype == np.float32
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    assert opt_b.state[model_b.weight]["step"] == 10


def test_training_state_is_a_plain_safetensors_file(tmp_path):
    model, opt, sched = make_run(0)
    train(model, opt, sched, 2)
    save_training_state(tmp_path / "run.safetensors", model, opt, step=2)
    tensors, meta = load_with_metadata(tmp_path / "run.safetensors")
    assert set(tensors) == {"model.weight", "model.bias", "optim.state.0.exp_avg", "optim.state.0.exp_avg_sq",
                            "optim.state.1.exp_avg", "optim.state.1.exp_avg_sq"}
    assert meta["step"] == "2" and json.loads(meta["optimizer"])["scalars"] == {"0": {"step": 2}, "1": {"step": 2}}
    np.testing.assert_array_equal(tensors["model.weight"], model.weight.data)


def test_load_training_state_mismatch_changes_nothing(tmp_path):
    model, opt, _ = make_run(0)
    save_training_state(tmp_path / "run.safetensors", model, None, step=1)
    other = Linear(5, 3)
    before = other.weight.data.copy()
    rng_before = tinylm.random.default_rng().bit_generator.state
    with pytest.raises(ValueError, match=r"shape mismatches \['weight: file \(3, 4\) vs model \(3, 5\)'\]"):
        load_training_state(tmp_path / "run.safetensors", other)
    np.testing.assert_array_equal(other.weight.data, before)
    assert tinylm.random.default_rng().bit_generator.state == rng_before
    with pytest.raises(CheckpointError, match="holds no optimizer state; pass optimizer=None"):
        load_training_state(tmp_path / "run.safetensors", model, opt)
    save(tmp_path / "plain.safetensors", {"weight": np.zeros(1)})
    with pytest.raises(CheckpointError, match="not a tinylm training state"):
        load_training_state(tmp_path / "plain.safetensors", model)
    with pytest.raises(TypeError, match="extra: must be JSON-serialisable"):
        save_training_state(tmp_path / "x.safetensors", model, extra={"a": np.zeros(2)})


# --- bad paths, models and optimizers: named, before anything is written -----------------------

@pytest.mark.parametrize("call, exc, match", [
    (lambda d, m, o: save(None, {"a": np.ones(2)}), TypeError,
     r"path: expected a str or os.PathLike file path, got NoneType"),
    (lambda d, m, o: load(None), TypeError, r"path: expected a str or os.PathLike file path, got NoneType"),
    (lambda d, m, o: load(123), TypeError, r"path: expected a str or os.PathLike file path, got int"),
    (lambda d, m, o: load_with_metadata(b"x.safetensors"), TypeError, r"path: expected a str .*got bytes"),
    (lambda d, m, o: save(d, {"a": np.ones(2)}), IsADirectoryError,
     r"path: '.*' is a directory; expected a file path"),
    (lambda d, m, o: load(d), IsADirectoryError, r"path: '.*' is a directory"),
    (lambda d, m, o: save_training_state(d / "ts.safetensors", None), TypeError,
     r"model: expected a tinylm Module, got NoneType"),
    (lambda d, m, o: save_training_state(d / "ts.safetensors", m, "adam"), TypeError,
     r"optimizer: expected None or a tinylm.optim optimizer, got str"),
    (lambda d, m, o: save_training_state(d, m, o), IsADirectoryError, r"path: '.*' is a directory"),
    (lambda d, m, o: load_training_state(d / "ts.safetensors", m.state_dict()), TypeError,
     r"model: expected a tinylm Module, got OrderedDict"),
    (lambda d, m, o: load_training_state(d / "ts.safetensors", m, {"lr": 1}), TypeError,
     r"optimizer: expected None or a tinylm.optim optimizer, got dict"),
])
def test_bad_paths_models_and_optimizers(tmp_path, call, exc, match):
    model = Linear(2, 3)
    with pytest.raises(exc, match=match):
        call(tmp_path, model, AdamW(model.parameters(), lr=1e-3))
    assert os.listdir(tmp_path) == []


def test_numpy_step_is_accepted(tmp_path):
    model = Linear(2, 3)
    save_training_state(tmp_path / "ts.safetensors", model, step=np.int64(7))
    assert load_training_state(tmp_path / "ts.safetensors", model)["step"] == 7
