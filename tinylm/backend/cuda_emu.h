// cuda_emu.h: just enough of CUDA C++ to compile tinylm's .cu kernels with g++ and run them on the CPU.
//
// Why: to check a kernel's arithmetic, indexing and masking (and, under ThreadSanitizer, find a
// missing __syncthreads) on a machine without a GPU. It is not a GPU model: no lockstep warps, no
// timing, no memory hierarchy; a block's threads are OS threads, run one block at a time, and a warp
// is 32 of them that meet only where the code says so (__syncwarp, shuffles, mma).
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
//   float2, float4, uint4, make_*            the same layout and alignment (8, 16, 16 bytes)
//   __align__(n)                             alignas(n)
//   __global__/__device__/__forceinline__/__restrict__/__launch_bounds__   qualifiers, dropped
//   min/max (int), expf, logf, fmaxf, INFINITY                                 from <cmath>/<algorithm>
//   __syncwarp, __shfl_xor_sync (full masks)  a barrier and an exchange among a warp's 32 threads
//   cuda_emu::mma_m16n8k16, ldmatrix_x4,      what a kernel's non-CUDA branch (#ifndef __CUDA_ARCH__)
//     half_to_float, pack_half2              calls in place of its inline PTX for the tensor cores'
//                                            mma.sync.m16n8k16, ldmatrix and the fp16 conversions
// What it does not: other warp intrinsics (__shfl_sync, __ballot_sync), atomics, wmma, textures,
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
#include <memory>
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
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
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

// A warp: 32 consecutive threads of the block (by linear thread index), with its own barrier for
// __syncwarp and the warp-wide operations (shuffles, mma), which exchange values through `slots`.
struct Warp {
    std::barrier<> barrier;
    unsigned long long slots[32][6];          // per lane: a shuffle's value, or an mma's A and B registers
    explicit Warp(unsigned lanes) : barrier(lanes) {}
};
inline thread_local Warp* this_warp = nullptr;
inline thread_local unsigned lane = 0;

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
                std::vector<std::unique_ptr<Warp>> warps;
                for (unsigned w = 0; w * 32 < nthreads; ++w)
                    warps.push_back(std::make_unique<Warp>(std::min(32u, nthreads - 32 * w)));
                std::vector<std::thread> threads;
                threads.reserve(nthreads);
                for (unsigned t = 0; t < nthreads; ++t)
                    threads.emplace_back([&, t] {
                        thread_idx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
                        block_idx = {bx, by, bz};
                        this_warp = warps[t / 32].get();
                        lane = t % 32;
                        body();
                        barrier.arrive_and_drop();          // an exited thread no longer holds others up
                        this_warp->barrier.arrive_and_drop();
                    });
                for (std::thread& th : threads) th.join();
                block_barrier = nullptr;
            }
}

// __shfl_xor_sync: every lane posts its value, then reads its partner's (lane ^ lane_mask).
template <class T>
T shfl_xor(T value, int lane_mask) {
    static_assert(sizeof(T) <= sizeof(unsigned long long), "shuffle of a value wider than 8 bytes");
    std::memcpy(&this_warp->slots[lane][0], &value, sizeof(T));
    this_warp->barrier.arrive_and_wait();
    T out;
    std::memcpy(&out, &this_warp->slots[(lane ^ lane_mask) & 31][0], sizeof(T));
    this_warp->barrier.arrive_and_wait();         // nobody overwrites a slot still being read
    return out;
}

// IEEE half precision, stored as its 16 bits (the kernels are header-free, so they carry halves
// as unsigned short and convert with PTX on the GPU; here with GCC's _Float16, rounding to nearest)
inline float half_to_float(unsigned short h) {
    _Float16 f;
    std::memcpy(&f, &h, 2);
    return (float)f;
}
inline unsigned short float_to_half(float x) {
    const _Float16 f = (_Float16)x;
    unsigned short h;
    std::memcpy(&h, &f, 2);
    return h;
}
inline unsigned pack_half2(float lo, float hi) {    // lo in bits 0-15, hi in bits 16-31
    return (unsigned)float_to_half(lo) | ((unsigned)float_to_half(hi) << 16);
}

// ldmatrix.sync.aligned.m8n8.x4{.trans}.b16: four 8x8 matrices of 16-bit elements from (shared)
// memory, one register per matrix in each lane. Lanes 8m .. 8m+7 give the addresses of matrix m's
// eight rows. Plain: lane 4g+t gets row g, columns 2t and 2t+1 (lower column in bits 0-15). .trans:
// the matrix transposed, so lane 4g+t gets column g, rows 2t and 2t+1.
inline void ldmatrix_x4(unsigned r[4], const unsigned short* row, bool trans) {
    this_warp->slots[lane][0] = (unsigned long long)row;
    this_warp->barrier.arrive_and_wait();
    const int g = lane / 4, t = lane % 4;
    for (int m = 0; m < 4; ++m) {
        auto at = [m](int row_in_matrix) { return (const unsigned short*)this_warp->slots[8 * m + row_in_matrix][0]; };
        const unsigned short lo = trans ? at(2 * t)[g] : at(g)[2 * t];
        const unsigned short hi = trans ? at(2 * t + 1)[g] : at(g)[2 * t + 1];
        r[m] = (unsigned)lo | ((unsigned)hi << 16);
    }
    this_warp->barrier.arrive_and_wait();
}

// mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32: D (16x8) = A (16x16) B (16x8) + C, one warp.
// Each lane holds pieces of the matrices in the layout the PTX ISA documents, with g = lane / 4 and
// t = lane % 4 ("groupID", "threadID_in_group"); a register holds two halves, the lower-indexed one
// in bits 0-15:
//   A  a[0] = (g, 2t..2t+1)   a[1] = (g+8, 2t..2t+1)   a[2] = (g, 2t+8..2t+9)   a[3] = (g+8, 2t+8..2t+9)
//   B  b[0] = (2t..2t+1, g)   b[1] = (2t+8..2t+9, g)                           (rows k, column n)
//   C  c[0..1] = (g, 2t..2t+1)   c[2..3] = (g+8, 2t..2t+1)
// The lanes post their A and B registers, each computes its own four outputs in float, as the
// tensor cores do (products of halves are exact in float; the order of the sum may differ).
inline void mma_m16n8k16(float c[4], const unsigned a[4], const unsigned b[2]) {
    unsigned long long* mine = this_warp->slots[lane];
    for (int r = 0; r < 4; ++r) mine[r] = a[r];
    mine[4] = b[0];
    mine[5] = b[1];
    this_warp->barrier.arrive_and_wait();
    auto A = [](int row, int k) {                  // element (row, k) of A, from the lane that holds it
        const unsigned long long* s = this_warp->slots[(row % 8) * 4 + (k % 8) / 2];
        const unsigned reg = (unsigned)s[(row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0)];
        return half_to_float((unsigned short)(k % 2 ? reg >> 16 : reg & 0xFFFF));
    };
    auto B = [](int k, int n) {
        const unsigned long long* s = this_warp->slots[n * 4 + (k % 8) / 2];
        const unsigned reg = (unsigned)s[4 + (k >= 8 ? 1 : 0)];
        return half_to_float((unsigned short)(k % 2 ? reg >> 16 : reg & 0xFFFF));
    };
    const int g = lane / 4, t = lane % 4;
    for (int e = 0; e < 4; ++e) {
        const int row = g + (e >= 2 ? 8 : 0), col = 2 * t + (e % 2);
        float acc = c[e];
        for (int k = 0; k < 16; ++k) acc += A(row, k) * B(k, col);
        c[e] = acc;
    }
    this_warp->barrier.arrive_and_wait();
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
inline void __syncwarp(unsigned mask = 0xffffffffu) {
    if (mask != 0xffffffffu) std::abort();        // the emulator runs whole warps only
    cuda_emu::this_warp->barrier.arrive_and_wait();
}
template <class T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask) {
    if (mask != 0xffffffffu) std::abort();
    return cuda_emu::shfl_xor(value, lane_mask);
}

using std::max;   // CUDA's device min/max on ints
using std::min;
