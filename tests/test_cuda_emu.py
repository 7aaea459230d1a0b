"""tinylm.backend.cuda_emu: CUDA kernels compiled with g++ and run on the CPU.

The emulator is what lets tests/test_kernels.py check the cupy kernels without a GPU, so these tests
pin down the CUDA semantics it promises (thread and block coordinates, shared memory per block,
barriers, early exits) and the faults it turns into errors instead of wrong numbers or a dead
process (unwritten shared memory, reads and writes past an argument, crashes, hangs, arguments of
the wrong type).
"""
import functools
import sys

import numpy as np
import pytest

import tinylm
from tinylm.backend import cuda_emu
from tinylm.backend.cuda_emu import CudaEmuError, RawModule
from tinylm.backend.cupy_kernels import CUDA_DIR, SOURCES
from tinylm.backend.registry import get_kernel

pytestmark = pytest.mark.skipif(cuda_emu.compiler() is None, reason="no C++ compiler (g++ or $CXX) for the emulator")

COORDS = r'''
extern "C" __global__ void coords(int* __restrict__ out) {
    // one int per thread: its global (x, y, z) and the launch's sizes, packed into decimal digits
    const int bx = blockIdx.x, by = blockIdx.y, bz = blockIdx.z;
    const int tx = threadIdx.x, ty = threadIdx.y, tz = threadIdx.z;
    const int block = (bz * gridDim.y + by) * gridDim.x + bx;
    const int thread = (tz * blockDim.y + ty) * blockDim.x + tx;
    out[block * blockDim.x * blockDim.y * blockDim.z + thread] =
        bx + 10 * by + 100 * bz + 1000 * tx + 10000 * ty + 100000 * tz;
}
'''

REDUCE = r'''
#define NT 64
extern "C" __global__ void block_sum(const float* __restrict__ x, float* __restrict__ out, int n) {
    // tree reduction through shared memory: needs every barrier
    __shared__ float buf[NT];
    const int i = blockIdx.x * NT + threadIdx.x;
    buf[threadIdx.x] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int half = NT / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) buf[threadIdx.x] += buf[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = buf[0];
}
'''

FAULTS = r'''
extern "C" __global__ void copy_shifted(const float* __restrict__ x, float* __restrict__ y, int n, int shift) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i + shift];
}
extern "C" __global__ void write_at(float* __restrict__ y, long long i) { if (threadIdx.x == 0) y[i] = 1.0f; }
extern "C" __global__ void half_written_shared(float* __restrict__ y) {
    __shared__ float s[32], t[32];   // two declarators in one declaration
    if (threadIdx.x < 4) s[threadIdx.x] = 1.0f;
    t[threadIdx.x] = 2.0f;
    __syncthreads();
    y[threadIdx.x] = s[threadIdx.x] + t[threadIdx.x];
}
extern "C" __global__ void early_exit(float* __restrict__ y, int n) {
    __shared__ float s[32];
    if (threadIdx.x >= n) return;    // leaves before the barrier, as exited GPU threads may
    s[threadIdx.x] = threadIdx.x;
    __syncthreads();
    y[threadIdx.x] = s[n - 1 - threadIdx.x];
}
extern "C" __global__ void spin(int* __restrict__ flag) { while (*(volatile int*)flag == 0) {} }
extern "C" __global__ void with_macro(int* __restrict__ y) { y[0] = VALUE; }
'''


@pytest.fixture(scope="module")
def faults():
    return RawModule(FAULTS, options=("-DVALUE=7", "--std=c++14"), name="faults.cu")


def test_thread_and_block_coordinates():
    grid, block = (2, 3, 2), (4, 2, 3)
    out = np.full(np.prod(grid) * np.prod(block), -1, np.int32)
    RawModule(COORDS).get_function("coords")(grid, block, (out,))
    bz, by, bx, tz, ty, tx = np.meshgrid(*(np.arange(n) for n in (*grid[::-1], *block[::-1])), indexing="ij")
    want = (bx + 10 * by + 100 * bz + 1000 * tx + 10000 * ty + 100000 * tz).reshape(-1)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("n", [1, 64, 200])
def test_shared_memory_reduction_per_block(n):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    blocks = (n + 63) // 64
    out = np.full(blocks, np.nan, np.float32)
    RawModule(REDUCE).get_function("block_sum")((blocks,), (64,), (x, out, np.int32(n)))
    want = np.add.reduceat(x.astype(np.float64), np.arange(0, n, 64))
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_shared_memory_the_block_never_wrote_reads_nan(faults):
    y = np.zeros(32, np.float32)
    faults.get_function("half_written_shared")(1, 32, (y,))
    np.testing.assert_array_equal(y[:4], 3.0)
    assert np.isnan(y[4:]).all()


def test_threads_that_return_early_do_not_hold_the_barrier(faults):
    y = np.full(32, -1.0, np.float32)
    faults.get_function("early_exit")(1, 32, (y, np.int32(5)))
    np.testing.assert_array_equal(y[:5], [4, 3, 2, 1, 0])
    np.testing.assert_array_equal(y[5:], -1.0)


def test_read_past_an_argument_brings_nan(faults):
    x, y = np.arange(10, dtype=np.float32), np.zeros(10, np.float32)
    faults.get_function("copy_shifted")(1, 32, (x, y, np.int32(10), np.int32(2)))
    np.testing.assert_array_equal(y[:8], x[2:])
    assert np.isnan(y[8:]).all()


@pytest.mark.parametrize("i, where", [(10, "after"), (-1, "before")])
def test_write_past_an_argument_raises(faults, i, where):
    y = np.zeros(10, np.float32)
    with pytest.raises(CudaEmuError, match=f"write_at: wrote outside its arguments.*'y' \\({where} its 40 bytes"):
        faults.get_function("write_at")(1, 1, (y, np.int64(i)))
    np.testing.assert_array_equal(y, 0.0)                 # nothing copied back


def test_crash_raises_and_the_process_survives(faults):
    with pytest.raises(CudaEmuError, match=r"write_at: crashed \(SIGSEGV\)"):
        faults.get_function("write_at")(1, 1, (np.zeros(10, np.float32), np.int64(1 << 40)))


def test_hang_raises_after_the_timeout(faults, monkeypatch):
    monkeypatch.setenv("TINYLM_CUDA_EMU_TIMEOUT", "0.5")
    with pytest.raises(CudaEmuError, match="spin: still running after 0.5 s"):
        faults.get_function("spin")(1, 1, (np.zeros(1, np.int32),))


WARP = r'''
extern "C" __global__ void butterfly(int* __restrict__ y, int mask) {
    y[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x * 10, mask);
}
// one m16n8k16 product: A (16 x 16) and B (16 x 8) as fp16 bits, row-major in memory, into the
// documented fragments; D (16 x 8) back out of its fragment
extern "C" __global__ void mma_tile(const unsigned short* __restrict__ A, const unsigned short* __restrict__ B,
                                    float* __restrict__ D) {
    const int g = threadIdx.x / 4, t = threadIdx.x % 4;
    unsigned a[4], b[2];
    for (int r = 0; r < 4; ++r) {
        const int row = g + (r % 2) * 8, col = 2 * t + (r / 2) * 8;
        a[r] = (unsigned)A[row * 16 + col] | ((unsigned)A[row * 16 + col + 1] << 16);
    }
    for (int r = 0; r < 2; ++r) {
        const int k = 2 * t + 8 * r;
        b[r] = (unsigned)B[k * 8 + g] | ((unsigned)B[(k + 1) * 8 + g] << 16);
    }
    float c[4] = {1.0f, 1.0f, 1.0f, 1.0f};                          // D = A B + 1
    cuda_emu::mma_m16n8k16(c, a, b);
    for (int e = 0; e < 4; ++e) D[(g + 8 * (e / 2)) * 8 + 2 * t + e % 2] = c[e];
}
// ldmatrix.x4 of the four 8x8 quadrants of a 16x16 matrix M (row-major): lanes 8m .. 8m+7 point at the
// rows of quadrant m = (row half m / 2, column half m % 2); out[lane][m] is the register lane received
extern "C" __global__ void ldsm(const unsigned short* __restrict__ M, unsigned* __restrict__ out, int trans) {
    __shared__ __align__(16) unsigned short Ms[16 * 16];
    for (int e = threadIdx.x; e < 256; e += 32) Ms[e] = M[e];
    __syncthreads();
    const int m = threadIdx.x / 8, r = threadIdx.x % 8;
    unsigned reg[4];
    cuda_emu::ldmatrix_x4(reg, Ms + ((m / 2) * 8 + r) * 16 + (m % 2) * 8, trans != 0);
    for (int i = 0; i < 4; ++i) out[threadIdx.x * 4 + i] = reg[i];
}
'''


@pytest.mark.parametrize("trans", [False, True], ids=["plain", "trans"])
def test_ldmatrix_x4_fragments(trans):
    M = np.arange(256, dtype=np.uint16).reshape(16, 16)
    out = np.zeros((32, 4), np.uint32)
    RawModule(WARP).get_function("ldsm")(1, 32, (M, out, np.int32(trans)))
    for lane in range(32):
        g, t = divmod(lane, 4)
        for m in range(4):
            Q = M[(m // 2) * 8:(m // 2) * 8 + 8, (m % 2) * 8:(m % 2) * 8 + 8]
            Q = Q.T if trans else Q                       # .trans: lane 4g+t gets column g, rows 2t, 2t+1
            lo, hi = Q[g, 2 * t], Q[g, 2 * t + 1]
            assert out[lane, m] == int(lo) | (int(hi) << 16), (lane, m)


@pytest.mark.parametrize("mask", [1, 2, 16, 31])
def test_warp_shuffle_xor(mask):
    y = np.zeros(64, np.int32)
    RawModule(WARP).get_function("butterfly")(1, 64, (y, np.int32(mask)))
    lanes = np.arange(64)
    np.testing.assert_array_equal(y, ((lanes // 32) * 32 + ((lanes % 32) ^ mask)) * 10)   # within each warp


def test_tensor_core_mma_in_the_documented_fragment_layout():
    r = np.random.default_rng(0)
    A, B = r.standard_normal((16, 16)).astype(np.float16), r.standard_normal((16, 8)).astype(np.float16)
    D = np.zeros((16, 8), np.float32)
    RawModule(WARP).get_function("mma_tile")(1, 32, (A.view(np.uint16), B.view(np.uint16), D))
    np.testing.assert_allclose(D, A.astype(np.float64) @ B.astype(np.float64) + 1, rtol=1e-5, atol=1e-5)


def test_define_options_reach_the_source(faults):
    y = np.zeros(1, np.int32)
    faults.get_function("with_macro")(1, 1, (y,))
    assert y[0] == 7


@pytest.mark.parametrize("args, match", [
    ((np.zeros(4, np.float32), np.zeros(4, np.float32), 4, np.int32(0)), r"'n' \(int\) must be numpy.int32, got int"),
    ((np.zeros(4, np.float32), np.zeros(4, np.float32), np.int64(4), np.int32(0)), "'n' .* got int64"),
    ((np.zeros(4), np.zeros(4, np.float32), np.int32(4), np.int32(0)), r"'x' \(const float\*\) must have dtype float32, got float64"),
    ((np.zeros(4, np.float32).tolist(), np.zeros(4, np.float32), np.int32(4), np.int32(0)), "'x' .* must be a NumPy array, got list"),
    ((np.zeros(8, np.float32)[::2], np.zeros(4, np.float32), np.int32(4), np.int32(0)), "'x' must be C-contiguous"),
    ((np.zeros(4, np.float32), np.zeros(4, np.float32)), r"expected 4 arguments \(x, y, n, shift\), got 2"),
])
def test_arguments_are_checked(faults, args, match):
    with pytest.raises(CudaEmuError, match=match):
        faults.get_function("copy_shifted")(1, 32, args)


def test_aliased_and_read_only_arguments_are_refused(faults):
    k = faults.get_function("copy_shifted")
    x = np.zeros(8, np.float32)
    with pytest.raises(CudaEmuError, match="'x' and 'y' share memory"):
        k(1, 8, (x, x, np.int32(8), np.int32(0)))
    y = np.zeros(8, np.float32)
    y.flags.writeable = False
    with pytest.raises(CudaEmuError, match="'y' .* is written, but the array is read-only"):
        k(1, 8, (x, y, np.int32(8), np.int32(0)))


@pytest.mark.parametrize("grid, block, match", [
    (1, 1025, "has 1025 threads; CUDA allows 1024"),
    ((0,), 32, "grid must be 1 to 3 positive ints"),
    (1, (2, 2, 2, 2), "block must be 1 to 3 positive ints"),
])
def test_launch_sizes_are_checked(faults, grid, block, match):
    with pytest.raises(CudaEmuError, match=match):
        faults.get_function("write_at")(grid, block, (np.zeros(1, np.float32), np.int64(0)))


def test_bad_sources_fail_with_the_reason():
    with pytest.raises(CudaEmuError, match="no kernel 'nope'; it defines"):
        RawModule(REDUCE).get_function("nope")
    with pytest.raises(CudaEmuError, match=r'bad.cu: no extern "C" __global__ kernels'):
        RawModule("__device__ int f() { return 1; }", name="bad.cu")
    with pytest.raises(CudaEmuError, match="(?s)could not compile it.*undeclared_thing"):
        RawModule('extern "C" __global__ void k(int* y) { y[0] = undeclared_thing; }')
    with pytest.raises(CudaEmuError, match="parameter 'p' has type 'float2'"):
        RawModule('extern "C" __global__ void k(float2 p) {}')
    with pytest.raises(CudaEmuError, match=r"parameter 'pp' has type 'float\*\*'"):
        RawModule('extern "C" __global__ void k(float** pp) {}')


def test_compiled_program_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLM_CUDA_EMU_CACHE", str(tmp_path))
    RawModule(REDUCE, name="reduce.cu")
    assert [p.name[:7] for p in tmp_path.iterdir()] == ["reduce-"]

    def no_compiler(*args, **kwargs):
        raise AssertionError("compiled again")
    monkeypatch.setattr(cuda_emu.subprocess, "run", no_compiler)
    RawModule(REDUCE, name="reduce.cu").get_function("block_sum")


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_cuda_source_builds_for_the_emulator(source):
    mod = RawModule((CUDA_DIR / source).read_text(), name=source)
    assert set(mod.kernels) == set(SOURCES[source])


def test_emulated_cupy_backend_switches_and_restores():
    had_cupy = "cupy" in sys.modules
    with cuda_emu.emulated_cupy_backend() as be:
        assert be.name == "cupy" and tinylm.get_backend() is be
        assert get_kernel("matmul").backend == "cupy" and get_kernel("attention").backend == "cupy"
        source = CUDA_DIR / "matmul_v1_naive.cu"
        mod = sys.modules["cupy"].RawModule(code=source.read_text(), options=("--std=c++14",))
        assert isinstance(mod, RawModule) and mod.name == str(source)     # reports name the real file
    assert tinylm.get_backend().name == "numpy"
    assert ("cupy" in sys.modules) == had_cupy
    with pytest.raises(ZeroDivisionError), cuda_emu.emulated_cupy_backend():
        1 / 0
    assert tinylm.get_backend().name == "numpy"
    assert ("cupy" in sys.modules) == had_cupy


# --- sanitizers: ThreadSanitizer sees a missing __syncthreads as a data race between a block's threads;
# AddressSanitizer sees any access past either end of an argument, a shared array or a thread's own

RACY = r'''
extern "C" __global__ void shift_left(float* __restrict__ y) {
    __shared__ float s[64];
    s[threadIdx.x] = threadIdx.x;
    BARRIER;                                       // the race: without it, s[t + 1] may not be written yet
    y[threadIdx.x] = threadIdx.x < 63 ? s[threadIdx.x + 1] : 0.0f;
}
'''
OFF_BY_ONE = r'''
extern "C" __global__ void sum_all(const float* __restrict__ x, float* __restrict__ y, int n) {
    float acc = 0.0f;
    for (int i = 0; i <= n + LAST; ++i) acc += x[i];    // LAST = 0 reads x[n], one past the end
    y[threadIdx.x] = acc;
}
'''
# (source, kernel, args, what the sanitizer must say) for each sanitizer's planted bug
PLANTED = {
    "thread": (RACY.replace("BARRIER", "(void)0"), "shift_left", lambda: (np.zeros(64, np.float32),),
               "(?s)ThreadSanitizer: data race.*shift_left"),
    "address": (OFF_BY_ONE.replace("LAST", "0"), "sum_all",
                lambda: (np.zeros(8, np.float32), np.zeros(1, np.float32), np.int32(8)),
                "(?s)AddressSanitizer: heap-buffer-overflow.*READ of size 4.*sum_all"),
}


@functools.cache
def _sanitizer_missing(sanitizer: str) -> str | None:
    """Why ``sanitizer`` can't run here, or None when it reports its planted bug."""
    source, kernel, args, _ = PLANTED[sanitizer]
    try:
        mod = RawModule(source, name=f"{sanitizer}_probe.cu", sanitize=sanitizer)
    except CudaEmuError as e:
        return f"g++ -fsanitize={sanitizer} does not build here: {e}"
    try:
        mod.get_function(kernel)(1, 64 if sanitizer == "thread" else 1, args())
    except CudaEmuError as e:
        return None if "Sanitizer" in str(e) else f"{sanitizer} sanitizer did not run as expected: {e}"
    return f"the {sanitizer} sanitizer ran but did not report the planted bug"


def _needs(sanitizer):
    if (why := _sanitizer_missing(sanitizer)) is not None:
        pytest.skip(why)


@pytest.mark.parametrize("sanitizer", list(PLANTED))
def test_sanitizer_reports_the_planted_bug_and_passes_the_fix(sanitizer):
    _needs(sanitizer)
    source, kernel, args, report = PLANTED[sanitizer]
    with pytest.raises(CudaEmuError, match=report):
        RawModule(source, name="planted.cu", sanitize=sanitizer).get_function(kernel)(
            1, 64 if sanitizer == "thread" else 1, args())
    if sanitizer == "thread":
        fixed = RawModule(RACY.replace("BARRIER", "__syncthreads()"), name="fixed.cu", sanitize=sanitizer)
        y = np.zeros(64, np.float32)
        fixed.get_function("shift_left")(1, 64, (y,))
        np.testing.assert_array_equal(y, np.r_[np.arange(1, 64), 0])
    else:
        fixed = RawModule(OFF_BY_ONE.replace("LAST", "-1"), name="fixed.cu", sanitize=sanitizer)
        y = np.zeros(1, np.float32)
        fixed.get_function("sum_all")(1, 1, (np.arange(8, dtype=np.float32), y, np.int32(8)))
        assert y[0] == 28


@pytest.mark.parametrize("sanitizer", list(PLANTED))
@pytest.mark.parametrize("case", ["matmul", "attention_causal_pad"])
def test_cuda_kernels_pass_the_sanitizers(sanitizer, case, monkeypatch):
    """tinylm's own kernels, through cupy_kernels' host code, every launch under the sanitizer: no
    race between a block's threads, no access outside an array (shapes with edge tiles everywhere)."""
    _needs(sanitizer)
    from tinylm.backend import cupy_kernels as ck
    monkeypatch.setenv("TINYLM_CUDA_EMU_SANITIZE", sanitizer)
    r = np.random.default_rng(0)
    with cuda_emu.emulated_cupy_backend():
        if case == "matmul":
            for a_shape, b_shape in [((2, 20, 40), (40, 67)), ((20, 68), (68, 132))]:    # scalar, float4 paths
                a, b = r.standard_normal(a_shape).astype(np.float32), r.standard_normal(b_shape).astype(np.float32)
                for f in (ck.matmul_naive, ck.matmul_tiled, ck.matmul_blocktile):
                    np.testing.assert_allclose(f(a, b), a @ b, rtol=1e-4, atol=1e-4)
        else:           # v1, v2 in both head-dim buckets, v3 (fp16, tensor cores) with two tiles of 64 each way
            for D, dtype, forward, source in [(24, np.float32, ck.flash_attention_forward, "attention_flash2.cu"),
                                              (24, np.float32, ck.flash_tiles_forward, "attention_v2_tiles.cu"),
                                              (40, np.float32, ck.flash_tiles_forward, "attention_v2_tiles.cu"),
                                              (40, np.float16, ck.flash_mma_forward, "attention_v3_mma.cu")]:
                q, k, v, g = (r.standard_normal((1, 2, 70, D)).astype(dtype) for _ in range(4))
                pad = r.random((1, 70)) < 0.2
                out, cache = forward(q, k, v, causal=True, key_padding_mask=pad, scale=0.2, dropout_mask=None)
                assert cache.kernels.source == source
                assert all(np.isfinite(x).all() for x in (out, *ck.flash_backward(g, cache)))
