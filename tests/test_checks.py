"""tinylm._checks: the shared argument checks and the exact messages other modules rely on."""
import numpy as np
import pytest

from tinylm._checks import (check_choice, check_config, check_flag, check_float, check_float_dtype, check_grad,
                            check_head_split, check_index_range, check_int, check_lengths, check_positive_float,
                            check_positive_int, check_probability, check_shape, is_real)
from tinylm.random import make_rng, module_rng


def test_check_shape_binds_and_names_the_mismatch():
    dims = check_shape("q", np.zeros((2, 4, 3)), ("B", "T", "D"))
    assert dims == {"B": 2, "T": 4, "D": 3}
    with pytest.raises(ValueError, match=r"k: expected shape \(B, S, D\) with B=2, D=3, got shape \(2, 5, 4\) "
                                         r"\(D=4, not 3\)"):
        check_shape("k", np.zeros((2, 5, 4)), ("B", "S", "D"), dims)
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 4\), got shape \(3,\) \(size 3 where 4"):
        check_shape("x", np.zeros(3), ("...", 4))
    with pytest.raises(ValueError, match=r"x: .*\(1 dims, expected at least 2\)"):
        check_shape("x", np.zeros(3), ("...", "A", "B"))
    with pytest.raises(TypeError, match=r"x: expected an array of shape \(\*,\), got list"):
        check_shape("x", [1.0], (None,))


def test_check_float_and_int():
    check_float("x", np.zeros(2, np.float32))
    with pytest.raises(TypeError, match=r"x: expected a floating-point array \(float32 or float64\), got int64"):
        check_float("x", np.zeros(2, np.int64))
    with pytest.raises(TypeError, match=r"x: expected a floating-point array .*got NoneType"):
        check_float("x", None)
    check_int("ids", np.zeros(2, np.uint8))
    with pytest.raises(TypeError, match=r"ids: expected an integer array, got float64"):
        check_int("ids", np.zeros(2))


def test_check_index_range():
    check_index_range("t", np.array([0, 4, -100]), 5, ignore=-100)
    with pytest.raises(ValueError, match=r"t: class ids must lie in \[0, 5\) \(or -100 to ignore\), got 5"):
        check_index_range("t", np.array([0, 5]), 5, ignore=-100, what="class ids")
    with pytest.raises(ValueError, match=r"ids: ids must lie in \[0, 5\), got -1"):
        check_index_range("ids", np.array([-1, 2]), 5)


@pytest.mark.parametrize("v, expected", [(3, 3), (np.int64(2), 2), (np.uint8(1), 1), (np.int32(7), 7)])
def test_check_positive_int_accepts_python_and_numpy_ints(v, expected):
    out = check_positive_int("n", v)
    assert out == expected and type(out) is int


@pytest.mark.parametrize("v", [0, -1, 2.0, True, np.bool_(True), "3", None, np.float64(2.0)])
def test_check_positive_int_rejects(v):
    with pytest.raises(ValueError, match=r"n: expected a positive int, got"):
        check_positive_int("n", v)


def test_check_flag():
    assert check_flag("causal", True) is True
    assert check_flag("causal", np.bool_(False)) is False
    for bad in ("no", 1, 0, None, 1.0, np.array([True])):
        with pytest.raises(TypeError, match=r"causal: expected a bool, got"):
            check_flag("causal", bad)


def test_check_grad():
    check_grad("dy", np.zeros((2, 3), np.float32), (2, 3), np.float32)
    with pytest.raises(TypeError, match=r"dy: expected a floating-point array .*got int64"):
        check_grad("dy", np.zeros((2, 3), np.int64), (2, 3), np.float32)
    with pytest.raises(TypeError, match=r"dy: expected a floating-point array .*got NoneType"):
        check_grad("dy", None, (2, 3), np.float32)
    with pytest.raises(ValueError, match=r"dy: expected shape \(2, 3\), got shape \(1, 3\)"):
        check_grad("dy", np.zeros((1, 3), np.float32), (2, 3), np.float32)    # no broadcast
    with pytest.raises(ValueError, match=r"dy: expected shape \(\), got shape \(1,\)"):
        check_grad("dy", np.zeros(1, np.float32), (), np.float32)
    with pytest.raises(TypeError, match=r"dy: expected dtype float32 \(the forward's output\), got float64"):
        check_grad("dy", np.zeros((2, 3)), (2, 3), np.float32)              # no silent promotion


def test_check_positive_float():
    assert check_positive_float("eps", np.float32(1e-5)) == pytest.approx(1e-5)
    assert type(check_positive_float("eps", 1)) is float
    for bad in (0, -1.0, float("nan"), float("inf"), True, "1e-5", None):
        with pytest.raises(ValueError, match=r"eps: expected a positive float, got"):
            check_positive_float("eps", bad)


def test_check_float_dtype():
    assert check_float_dtype("dtype", "float64") == np.float64
    assert check_float_dtype("dtype", np.float32) == np.float32
    with pytest.raises(TypeError, match=r"dtype: expected a floating dtype \(float32 or float64\), got int32"):
        check_float_dtype("dtype", np.int32)
    with pytest.raises(TypeError, match=r"dtype: expected a floating dtype .*got 'float33'"):
        check_float_dtype("dtype", "float33")
    with pytest.raises(TypeError, match=r"dtype: expected a floating dtype .*got None"):
        check_float_dtype("dtype", None)


def test_check_probability_and_choice():
    assert check_probability("p", np.float32(0.5)) == 0.5
    assert check_probability("p", 1, allow_one=True) == 1.0
    with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\), got 1.0"):
        check_probability("p", 1.0)
    with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\], got True"):
        check_probability("p", True, allow_one=True)
    assert check_choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"mode: expected one of \('a', 'b'\), got 'c'"):
        check_choice("mode", "c", ("a", "b"))


def test_check_lengths():
    out = check_lengths("lengths", [3, 1], 4, batch=2)
    assert out.dtype == np.int64 and out.tolist() == [3, 1]
    with pytest.raises(ValueError, match=r"lengths: every length must lie in \[1, 4\] .*got 5"):
        check_lengths("lengths", [5, 1], 4)
    with pytest.raises(ValueError, match=r"lengths: expected shape \(B,\) with B=3"):
        check_lengths("lengths", [1, 1], 4, batch=3)
    with pytest.raises(TypeError, match=r"lengths: expected an integer array, got float64"):
        check_lengths("lengths", np.array([1.0]), 4)


def test_make_rng_names_the_callers_argument():
    g = np.random.default_rng(0)
    assert make_rng(g) is g
    assert make_rng(np.int64(3)).random() == np.random.default_rng(3).random()
    with pytest.raises(TypeError, match=r"seed: expected None, a non-negative int or a numpy Generator, got 'x'"):
        make_rng("x")                                        # the default name keeps the old message
    with pytest.raises(TypeError, match=r"rng: expected None, a non-negative int or a numpy Generator, got -1"):
        make_rng(-1, name="rng")
    with pytest.raises(TypeError, match=r"rng: .*got True"):
        make_rng(True, name="rng")


def test_module_rng_makes_one_stream_and_keeps_none():
    assert module_rng(None) is None                          # None: the module follows the global generator
    g = np.random.default_rng(0)
    assert module_rng(g) is g
    s = module_rng(5)                                        # an int: ONE generator, to be shared downward
    assert isinstance(s, np.random.Generator) and s.random() == np.random.default_rng(5).random()
    with pytest.raises(TypeError, match=r"rng: expected None, a non-negative int or a numpy Generator, got 'x'"):
        module_rng("x")


def test_is_real_takes_python_and_numpy_numbers_but_no_bools():
    for v in (1, 2.5, np.int64(3), np.float32(0.1), float("nan")):
        assert is_real(v), v
    for v in (True, np.True_, "1", None, np.ones(1), 1j):
        assert not is_real(v), v
    from tinylm.models.ngram import NGramLM
    from tinylm.models.word2vec import Word2Vec
    assert NGramLM(2, smoothing="add_k", k=np.float64(0.5)).k == 0.5          # a NumPy scalar is a number
    with pytest.raises(ValueError, match=r"ns_exponent: expected a finite number"):
        Word2Vec(ns_exponent=np.True_)                                         # np.bool_ is not


def test_check_head_split_one_message_for_every_model():
    assert check_head_split("n_embd", 12, "n_head", 3) == 4
    with pytest.raises(ValueError, match=r"^n_embd: must be divisible by n_head=5 \(each head gets n_embd / n_head "
                                         r"features\), got n_embd=12$"):
        check_head_split("n_embd", 12, "n_head", 5)


def test_check_config_says_how_to_build_one_from_a_dict():
    from tinylm.models.gpt import GPTConfig
    check_config(GPTConfig(), GPTConfig)
    with pytest.raises(TypeError,
                       match=r"^config: expected a GPTConfig, got dict \(build one with GPTConfig\(\*\*d\)\)$"):
        check_config({"n_layer": 2}, GPTConfig)
