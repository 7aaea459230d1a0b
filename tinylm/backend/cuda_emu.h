// cuda_emu.h: just enough of CUDA C++ to compile tinylm's .cu kernels with g++ and run them on the CPU.
//
// Why: to check a kernel's arithmetic, indexing and masking (and, under ThreadSanitizer, find a
// missing __syncthreads) on a machine without a GPU. It is not a GPU model: no warps, no
// timing, no memory hierarchy; a block's threads are OS threads, run one block at a time.
// Used by tinylm/backend/cuda_emu.py, which puts this header before a .cu source and after it one
// launcher per kernel plus a main(): each launch is one run of that small program (driver_main).
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
//   float2, float4, make_float2/4            the same layout and alignment (8, 16 bytes)
//   __align__(n)                             alignas(n)
//   __global__/__device__/__forceinline__/__restrict__/__launch_bounds__   qualifiers, dropped
//   min/max (int), expf, logf, fmaxf, INFINITY                                 from <cmath>/<algorithm>
// What it does not: warp intrinsics (__shfl_*, __ballot_sync), atomics, tensor cores, textures,
// dynamic shared memory. A kernel using them fails to compile here, loudly.
#pragma once

#include <fcntl.h>
#include <math.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

// CUDA's vector types, with their alignment: a float4 access is one 16-byte load or store
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

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

// One entry per kernel of the source: its launcher and its parameters, one character each: 'p' for a
// pointer, else the scalar's size in bytes ('4' for int or float, '8' for long long).
using Launcher = void (*)(dim3 grid, dim3 block, void** args);
struct KernelEntry {
    const char* name;
    Launcher launch;
    const char* params;
};

// argv: kernel gx gy gz bx by bz, then one word per parameter: a pointer's "file:offset:bytes" (the
// file is mapped shared, so what the kernel writes lands in it, between the guard bytes cuda_emu.py
// put around it) or a scalar's bytes in hex, little-endian. Arguments are cuLaunchKernel's: args[i]
// points at the value of parameter i. Under AddressSanitizer each array is copied to a heap block of
// exactly its size for the launch (and back after), so ASan reports any access past either end.
inline int driver_main(int argc, char** argv, const KernelEntry* table, int n_kernels) {
    const KernelEntry* k = nullptr;
    for (int i = 0; argc > 1 && i < n_kernels; ++i)
        if (std::strcmp(table[i].name, argv[1]) == 0) k = &table[i];
    const int n_params = k ? (int)std::strlen(k->params) : 0;
    if (!k || argc != 8 + n_params) {
        std::fprintf(stderr, "cuda_emu driver: usage: kernel gx gy gz bx by bz args...\n");
        return 2;
    }
    unsigned d[6];
    for (int i = 0; i < 6; ++i) d[i] = (unsigned)std::strtoul(argv[2 + i], nullptr, 10);
    std::vector<unsigned long long> values(n_params);   // a pointer's or a scalar's bits
    std::vector<void*> args(n_params);
    struct HeapCopy {
        char* mapped;
        char* heap;
        size_t bytes;
    };
    std::vector<HeapCopy> heap_copies;
    for (int i = 0; i < n_params; ++i) {
        const char* word = argv[8 + i];
        if (k->params[i] == 'p') {
            const std::string w(word);                    // path:offset:bytes (the path may hold ':')
            const size_t c2 = w.rfind(':'), c1 = w.rfind(':', c2 - 1);
            const std::string path = w.substr(0, c1);
            const size_t offset = std::stoull(w.substr(c1 + 1, c2 - c1 - 1));
            [[maybe_unused]] const size_t bytes = std::stoull(w.substr(c2 + 1));
            const int fd = open(path.c_str(), O_RDWR);
            struct stat st;
            if (fd < 0 || fstat(fd, &st) != 0) {
                std::perror(path.c_str());
                return 2;
            }
            char* base = (char*)mmap(nullptr, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (base == MAP_FAILED) {
                std::perror("mmap");
                return 2;
            }
            close(fd);
            char* data = base + offset;
#if defined(__SANITIZE_ADDRESS__)
            char* heap = (char*)std::malloc(bytes ? bytes : 1);
            std::memcpy(heap, data, bytes);
            heap_copies.push_back({data, heap, bytes});
            data = heap;
#endif
            values[i] = (unsigned long long)data;
        } else {
            const int size = k->params[i] - '0';
            unsigned char* bytes = (unsigned char*)&values[i];   // little-endian: low bytes first
            for (int b = 0; b < size; ++b) {
                char hex[3] = {word[2 * b], word[2 * b + 1], 0};
                bytes[b] = (unsigned char)std::strtoul(hex, nullptr, 16);
            }
        }
        args[i] = &values[i];
    }
    k->launch(dim3{d[0], d[1], d[2]}, dim3{d[3], d[4], d[5]}, args.data());
    for (const HeapCopy& h : heap_copies) {
        std::memcpy(h.mapped, h.heap, h.bytes);
        std::free(h.heap);
    }
    return 0;
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
#define __align__(n) alignas(n)

inline void __syncthreads() { cuda_emu::block_barrier->arrive_and_wait(); }

using std::max;   // CUDA's device min/max on ints
using std::min;
