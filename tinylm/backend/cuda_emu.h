// cuda_emu.h: just enough of CUDA C++ to compile tinylm's .cu kernels with g++ and run them on the CPU.
//
// Why: to check a kernel's arithmetic, indexing and masking (and find a missing __syncthreads) on a
// machine without a GPU, and to step through a kernel in gdb. It is not a GPU model: no warps, no
// timing, no memory hierarchy; a block's threads are OS threads, run one block at a time.
// Used by tinylm/backend/cuda_emu.py, which prepends this header to a .cu source (g++ -include).
//
// What it emulates:
//   threadIdx, blockIdx, blockDim, gridDim   per-thread (thread_local) and per-launch values
//   __syncthreads()                          a std::barrier over the block's threads; a thread that
//                                            returns early drops out of it (as exited GPU threads do)
//   __shared__                               a static array: one copy, shared by the threads of the
//                                            one block running; filled with NaN bytes (0xFF) before
//                                            each block, so a read of shared memory the block never
//                                            wrote shows up as NaN, not as a stale value. cuda_emu.py
//                                            rewrites each declaration into that array plus a
//                                            cuda_emu::SharedRegistration (this header has no
//                                            __shared__ macro: a declaration it missed won't compile)
//   __global__/__device__/__forceinline__/__restrict__/__launch_bounds__   qualifiers, dropped
//   min/max (int), expf, logf, fmaxf, INFINITY                                 from <cmath>/<algorithm>
// What it does not: warp intrinsics (__shfl_*, __ballot_sync), atomics, tensor cores, textures,
// dynamic shared memory. A kernel using them fails to compile here, loudly.
#pragma once

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstring>
#include <math.h>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace cuda_emu {
inline thread_local dim3 thread_idx, block_idx;   // this thread's coordinates
inline dim3 block_dim, grid_dim;                  // the launch's, read-only while it runs
inline std::barrier<>* block_barrier = nullptr;   // the running block's __syncthreads

// Every __shared__ array registers itself here (address, size) the first time its declaration runs
// (a static local's initialiser: once, before any thread goes past it), poisoned from the start.
struct SharedArray {
    void* ptr;
    std::size_t bytes;
};
inline std::vector<SharedArray>& shared_arrays() {
    static std::vector<SharedArray> arrays;
    return arrays;
}
struct SharedRegistration {
    SharedRegistration(void* p, std::size_t n) {
        shared_arrays().push_back({p, n});
        std::memset(p, 0xFF, n);
    }
};
inline void poison_shared() {
    for (const SharedArray& a : shared_arrays()) std::memset(a.ptr, 0xFF, a.bytes);   // 0xFF..: NaN
}

// Run `body` as a CUDA grid: blocks one after another, each block's threads as OS threads.
template <class Body>
void launch(dim3 grid, dim3 block, Body body) {
    const unsigned nthreads = block.x * block.y * block.z;
    grid_dim = grid;
    block_dim = block;
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                poison_shared();
                std::barrier<> barrier(nthreads);
                block_barrier = &barrier;
                std::vector<std::thread> threads;
                threads.reserve(nthreads);
                for (unsigned t = 0; t < nthreads; ++t)
                    threads.emplace_back([&, t] {
                        thread_idx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
                        block_idx = {bx, by, bz};
                        body();
                        barrier.arrive_and_drop();          // an exited thread no longer holds others up
                    });
                for (std::thread& th : threads) th.join();
                block_barrier = nullptr;
            }
}
}  // namespace cuda_emu

#define threadIdx (cuda_emu::thread_idx)
#define blockIdx (cuda_emu::block_idx)
#define blockDim (cuda_emu::block_dim)
#define gridDim (cuda_emu::grid_dim)

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)

inline void __syncthreads() { cuda_emu::block_barrier->arrive_and_wait(); }

using std::max;   // CUDA's device min/max on ints
using std::min;
