// attention v3: FlashAttention-2 on the tensor cores, fp16 inputs and outputs, float accumulation.
//
// v2 (attention_v2_tiles.cu) does the tile products with float multiply-adds. Here every product is
// the tensor cores' mma.sync.m16n8k16 (D = A B + C, A 16x16 and B 16x8 in fp16, C and D in float),
// issued by one warp, and FlashAttention-2's register trick removes the shared-memory round trips:
// the scores S = Q K^T come out of mma in the accumulator layout, and the probabilities P, computed
// in place from them, are already in the layout mma wants for its A operand, so P V follows at once.
// The B operands (K, V, and Q, dO in the backward) come from shared memory by ldmatrix, four 8x8
// pieces per instruction: plain for K (its rows are the product's columns), .trans for V.
//
// Fragment layout (PTX ISA, mma.m16n8k16, f16): lane = 4 g + t (g = groupID 0..7, t = 0..3);
//   A (16 x 16)  a[0] = row g, cols 2t, 2t+1; a[1] = row g+8, same; a[2], a[3]: cols + 8
//   B (16 x 8)   b[0] = rows (k) 2t, 2t+1 of column g; b[1] = rows 2t+8, 2t+9
//   C (16 x 8)   c[0], c[1] = row g, cols 2t, 2t+1; c[2], c[3] = row g+8
// A register holds two halves, the lower-indexed in bits 0-15. Two C tiles side by side (16 x 16)
// hold exactly the elements of one A tile, which is the register trick.
//
// Kernels (grid.y = B*H; 4 warps per block, 16 query (or key) rows per warp, head dim D <= 64; the
// host passes vec = 1 when D = 64 and q, k, v, dO start 16-byte aligned, for 16-byte tile loads):
//   attn_mma_fwd         S = Q K^T, online softmax, O += P V; keeps O (fp16) and the row lse (float)
//   attn_mma_bwd_delta   delta_i = dO_i . O_i
//   attn_mma_bwd_dkdv    per 64 keys: S^T = K Q^T, P^T, dP^T = V dO^T, dS^T; dV += P^T dO, dK += dS^T Q
//   attn_mma_bwd_dq      per 64 queries: S, P, dP = dO V^T, dS; dQ += dS K (no atomics anywhere)
// Masks and the derivation as v1/v2 (derivations/flash_attention.md); dS is rounded to fp16 for
// its products, as in FlashAttention-2. fp16 data travels as unsigned short: the source includes
// no header, because NVRTC (CuPy's compiler) has none; the conversions, ldmatrix and mma are inline PTX, and
// tinylm's CPU emulator (tinylm/backend/cuda_emu.h) supplies them where __CUDA_ARCH__ is not defined.

#ifndef INFINITY                  // NVRTC has no <math.h>: +inf from its bits
#define INFINITY __int_as_float(0x7f800000)
#endif

#define NWARPS 4
#define NT (32 * NWARPS)   // __launch_bounds__(NT, 1): all 255 registers are ours (the backward holds
                           // four 16 x 64 float accumulators per warp); with (NT) alone ptxas spilled
#define BR 64             // query rows per block: 16 per warp
#define BC 64             // keys per tile
#define DP 64             // head dim, padded (columns past D are zero)
#define LDS (DP + 8)      // shared-memory row length in halves: +16 bytes, so rows start in other banks

typedef unsigned short half_bits;

__device__ __forceinline__ float h2f(half_bits h) {
#ifdef __CUDA_ARCH__
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
#else
    return cuda_emu::half_to_float(h);
#endif
}

__device__ __forceinline__ unsigned pack(float lo, float hi) {          // two floats -> f16x2, rounded
#ifdef __CUDA_ARCH__
    unsigned r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));   // the first source goes high
    return r;
#else
    return cuda_emu::pack_half2(lo, hi);
#endif
}

__device__ __forceinline__ half_bits f2h(float x) { return (half_bits)(pack(x, 0.0f) & 0xFFFF); }   // one float -> fp16

__device__ __forceinline__ void mma(float c[4], const unsigned a[4], const unsigned* b) {   // b[0], b[1]
#ifdef __CUDA_ARCH__
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    cuda_emu::mma_m16n8k16(c, a, b);
#endif
}

// ldmatrix.x4: four 8x8 fp16 matrices from shared memory, one register each; lanes 8m .. 8m+7 point at
// matrix m's rows. Plain, lane 4g+t gets (row g; cols 2t, 2t+1): B fragments of a matrix stored with
// n along rows. .trans, lane 4g+t gets (rows 2t, 2t+1; col g): B fragments of a matrix stored with k
// along rows. Generic addressing (no .shared): the pointer needs no conversion helper, so no header.
__device__ __forceinline__ void ldsm_x4(unsigned r[4], const half_bits* row) {
#ifdef __CUDA_ARCH__
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "l"(row));
#else
    cuda_emu::ldmatrix_x4(r, row, false);
#endif
}
__device__ __forceinline__ void ldsm_x4_trans(unsigned r[4], const half_bits* row) {
#ifdef __CUDA_ARCH__
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "l"(row));
#else
    cuda_emu::ldmatrix_x4(r, row, true);
#endif
}

__device__ __forceinline__ bool visible(int i, int j, int T, int S, int causal, const unsigned char* pad_b) {
    return i < T && j < S && !pad_b[j] && (!causal || j <= i + S - T);
}

__device__ __forceinline__ int visible_keys(int i, int T, int S, int causal) {
    return causal ? min(S, i + S - T + 1) : S;
}

// rows [row0, row0 + rows) of src (n rows of D halves) into dst[rows][LDS]; zeros past n and past D.
// vec (D == DP and src 16-byte aligned, so every row is): 16-byte loads and stores, 8 halves at a time
__device__ __forceinline__ void load_tile(half_bits* dst, const half_bits* src, int row0, int n, int D, int rows,
                                          int vec) {
    if (vec) {
        for (int e = threadIdx.x; e < rows * (DP / 8); e += NT) {
            const int r = e / (DP / 8), c = e % (DP / 8), row = row0 + r;
            *reinterpret_cast<uint4*>(dst + r * LDS + 8 * c) =
                row < n ? *reinterpret_cast<const uint4*>(src + (long long)row * D + 8 * c) : make_uint4(0, 0, 0, 0);
        }
        return;
    }
    for (int e = threadIdx.x; e < rows * DP; e += NT) {
        const int r = e / DP, d = e % DP, row = row0 + r;
        dst[r * LDS + d] = (row < n && d < D) ? src[(long long)row * D + d] : (half_bits)0;
    }
}

// A fragments of 16 rows [row0, row0 + 16) of a (n, D) fp16 matrix, for the DP / 16 column chunks
__device__ __forceinline__ void load_a(unsigned a[DP / 16][4], const half_bits* src, int row0, int n, int D) {
    const int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
#pragma unroll
    for (int kc = 0; kc < DP / 16; ++kc)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int row = row0 + g + (r % 2) * 8, col = kc * 16 + 2 * t + (r / 2) * 8;
            const float lo = (row < n && col < D) ? h2f(src[(long long)row * D + col]) : 0.0f;
            const float hi = (row < n && col + 1 < D) ? h2f(src[(long long)row * D + col + 1]) : 0.0f;
            a[kc][r] = pack(lo, hi);
        }
}

// acc[nt] (16 x 8 tiles across 64 columns) += A (16 x DP, fragments) X^T, X = tile[64][LDS]: the
// columns of the product are X's rows (n along rows: plain ldmatrix). One ldmatrix.x4 feeds two mma:
// matrices 0, 1 are rows 16np .. +7 at columns kc*16 and kc*16 + 8 (b[0], b[1] of n-tile 2np),
// matrices 2, 3 the same for rows 16np + 8 .. +15 (n-tile 2np + 1)
__device__ __forceinline__ void product_abt(float acc[8][4], const unsigned a[DP / 16][4], const half_bits* X) {
    const int lane = threadIdx.x % 32, m = lane / 8, r = lane % 8;
#pragma unroll
    for (int kc = 0; kc < DP / 16; ++kc)
#pragma unroll
        for (int np = 0; np < 4; ++np) {
            unsigned b[4];
            ldsm_x4(b, X + (np * 16 + (m / 2) * 8 + r) * LDS + kc * 16 + (m % 2) * 8);
            mma(acc[2 * np], a[kc], b);
            mma(acc[2 * np + 1], a[kc], b + 2);
        }
}

// acc[dt] (16 x 8 tiles across DP columns) += P (16 x 64, the C-layout values p[8][4]) Y, Y = tile[64][LDS]:
// P's C tiles 2c, 2c+1 are the A fragment of its column chunk c (the register trick); Y has k along its
// rows, so its B fragments come from ldmatrix.trans: matrices 0, 1 are rows c*16 .. +7 and c*16 + 8 ..
// +15 at column 16dp (d-tile 2dp), matrices 2, 3 the same at column 16dp + 8 (d-tile 2dp + 1)
__device__ __forceinline__ void product_py(float acc[DP / 8][4], const float p[8][4], const half_bits* Y) {
    const int lane = threadIdx.x % 32, m = lane / 8, r = lane % 8;
#pragma unroll
    for (int c = 0; c < 4; ++c) {
        const unsigned a[4] = {pack(p[2 * c][0], p[2 * c][1]), pack(p[2 * c][2], p[2 * c][3]),
                               pack(p[2 * c + 1][0], p[2 * c + 1][1]), pack(p[2 * c + 1][2], p[2 * c + 1][3])};
#pragma unroll
        for (int dp = 0; dp < DP / 16; ++dp) {
            unsigned b[4];
            ldsm_x4_trans(b, Y + (c * 16 + (m % 2) * 8 + r) * LDS + dp * 16 + (m / 2) * 8);
            mma(acc[2 * dp], a, b);
            mma(acc[2 * dp + 1], a, b + 2);
        }
    }
}

// the largest of the values a quad of lanes (one row's) holds, or their sum: butterflies over t
__device__ __forceinline__ float quad_max(float x) {
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

extern "C" __global__ void __launch_bounds__(NT, 1)
attn_mma_fwd(const half_bits* __restrict__ q, const half_bits* __restrict__ k, const half_bits* __restrict__ v,
             const unsigned char* __restrict__ pad, half_bits* __restrict__ out, float* __restrict__ lse, int H,
             int T, int S, int D, int causal, float scale, int vec) {
    __shared__ __align__(16) half_bits Ks[BC * LDS];
    __shared__ __align__(16) half_bits Vs[BC * LDS];
    const int bh = blockIdx.y, i0 = blockIdx.x * BR, warp = threadIdx.x / 32;
    const int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    const int r0 = i0 + 16 * warp;                                   // this warp's 16 query rows
    const unsigned char* pad_b = pad + (long long)(bh / H) * S;
    q += (long long)bh * T * D;
    k += (long long)bh * S * D;
    v += (long long)bh * S * D;

    unsigned qa[DP / 16][4];
    load_a(qa, q, r0, T, D);
    float o[DP / 8][4] = {};
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};        // rows g and g + 8; l: this lane's part
    const int keys = visible_keys(min(T - 1, i0 + BR - 1), T, S, causal);
    for (int j0 = 0; j0 < keys; j0 += BC) {
        __syncthreads();                                             // the last tile's readers are done
        load_tile(Ks, k, j0, S, D, BC, vec);
        load_tile(Vs, v, j0, S, D, BC, vec);
        __syncthreads();
        float s[8][4] = {};
        product_abt(s, qa, Ks);                                      // S = Q K^T, 16 x 64 per warp
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int h = e / 2, i = r0 + g + 8 * h, j = j0 + nt * 8 + 2 * t + e % 2;
                s[nt][e] = visible(i, j, T, S, causal, pad_b) ? s[nt][e] * scale : -INFINITY;
                mx[h] = fmaxf(mx[h], s[nt][e]);
            }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const float m_new = fmaxf(m[h], quad_max(mx[h]));
            const float alpha = m_new == -INFINITY ? 1.0f : expf(m[h] - m_new);   // 0 at the first seen key
            m[h] = m_new;
            l[h] *= alpha;
#pragma unroll
            for (int dt = 0; dt < DP / 8; ++dt) {
                o[dt][2 * h] *= alpha;
                o[dt][2 * h + 1] *= alpha;
            }
#pragma unroll
            for (int nt = 0; nt < 8; ++nt)
#pragma unroll
                for (int e = 2 * h; e < 2 * h + 2; ++e) {
                    s[nt][e] = m_new == -INFINITY ? 0.0f : expf(s[nt][e] - m_new);   // P, in place
                    l[h] += s[nt][e];
                }
        }
        product_py(o, s, Vs);                                        // O += P V
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int i = r0 + g + 8 * h;
        const float sum = quad_sum(l[h]);                            // every lane of the quad joins in
        if (i >= T) continue;
        const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
#pragma unroll
        for (int dt = 0; dt < DP / 8; ++dt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int d = dt * 8 + 2 * t + e;
                if (d < D) out[((long long)bh * T + i) * D + d] = f2h(o[dt][2 * h + e] * inv);
            }
        if (t == 0) lse[(long long)bh * T + i] = sum > 0.0f ? m[h] + logf(sum) : INFINITY;
    }
}

extern "C" __global__ void attn_mma_bwd_delta(const half_bits* __restrict__ out, const half_bits* __restrict__ dout,
                                              float* __restrict__ delta, long long rows, int D) {
    const long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    float acc = 0.0f;
    for (int d = 0; d < D; ++d) acc += h2f(out[r * D + d]) * h2f(dout[r * D + d]);
    delta[r] = acc;
}

extern "C" __global__ void __launch_bounds__(NT, 1)
attn_mma_bwd_dkdv(const half_bits* __restrict__ q, const half_bits* __restrict__ k, const half_bits* __restrict__ v,
                  const unsigned char* __restrict__ pad, const half_bits* __restrict__ dout,
                  const float* __restrict__ lse, const float* __restrict__ delta, half_bits* __restrict__ dk,
                  half_bits* __restrict__ dv, int H, int T, int S, int D, int causal, float scale, int vec) {
    __shared__ __align__(16) half_bits Qs[BR * LDS];
    __shared__ __align__(16) half_bits Gs[BR * LDS];                 // dO rows
    __shared__ float Ls[BR], Es[BR];                                 // lse and delta of those rows
    const int bh = blockIdx.y, j0 = blockIdx.x * BC, warp = threadIdx.x / 32;
    const int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    const int c0 = j0 + 16 * warp;                                   // this warp's 16 keys
    const unsigned char* pad_b = pad + (long long)(bh / H) * S;
    q += (long long)bh * T * D;
    dout += (long long)bh * T * D;

    unsigned ka[DP / 16][4], va[DP / 16][4];
    load_a(ka, k + (long long)bh * S * D, c0, S, D);
    load_a(va, v + (long long)bh * S * D, c0, S, D);
    float dkp[DP / 8][4] = {}, dvp[DP / 8][4] = {};
    // causal: key j is seen by queries i >= j - (S - T); start at the tile holding the first such query
    const int i_start = causal ? max(0, j0 - (S - T)) / BR * BR : 0;
    for (int i0 = i_start; i0 < T; i0 += BR) {
        __syncthreads();
        load_tile(Qs, q, i0, T, D, BR, vec);
        load_tile(Gs, dout, i0, T, D, BR, vec);
        for (int r = threadIdx.x; r < BR; r += NT) {
            Ls[r] = i0 + r < T ? lse[(long long)bh * T + i0 + r] : INFINITY;
            Es[r] = i0 + r < T ? delta[(long long)bh * T + i0 + r] : 0.0f;
        }
        __syncthreads();
        float st[8][4] = {}, dpt[8][4] = {};
        product_abt(st, ka, Qs);                                     // S^T = K Q^T (keys x queries)
        product_abt(dpt, va, Gs);                                    // dP^T = V dO^T
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int j = c0 + g + 8 * (e / 2), col = nt * 8 + 2 * t + e % 2, i = i0 + col;
                const float L = Ls[col];
                const float p = (L != INFINITY && visible(i, j, T, S, causal, pad_b)) ? expf(scale * st[nt][e] - L)
                                                                                    : 0.0f;
                st[nt][e] = p;                                           // P^T
                dpt[nt][e] = p * (dpt[nt][e] - Es[col]);                 // dS^T = P^T (dP^T - delta)
            }
        product_py(dvp, st, Gs);                                     // dV += P^T dO
        product_py(dkp, dpt, Qs);                                    // dK += dS^T Q
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int j = c0 + g + 8 * h;
        if (j >= S) continue;
#pragma unroll
        for (int dt = 0; dt < DP / 8; ++dt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int d = dt * 8 + 2 * t + e;
                if (d >= D) continue;
                dk[((long long)bh * S + j) * D + d] = f2h(scale * dkp[dt][2 * h + e]);
                dv[((long long)bh * S + j) * D + d] = f2h(dvp[dt][2 * h + e]);
            }
    }
}

extern "C" __global__ void __launch_bounds__(NT, 1)
attn_mma_bwd_dq(const half_bits* __restrict__ q, const half_bits* __restrict__ k, const half_bits* __restrict__ v,
                const unsigned char* __restrict__ pad, const half_bits* __restrict__ dout,
                const float* __restrict__ lse, const float* __restrict__ delta, half_bits* __restrict__ dq, int H,
                int T, int S, int D, int causal, float scale, int vec) {
    __shared__ __align__(16) half_bits Ks[BC * LDS];
    __shared__ __align__(16) half_bits Vs[BC * LDS];
    const int bh = blockIdx.y, i0 = blockIdx.x * BR, warp = threadIdx.x / 32;
    const int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    const int r0 = i0 + 16 * warp;
    const unsigned char* pad_b = pad + (long long)(bh / H) * S;
    k += (long long)bh * S * D;
    v += (long long)bh * S * D;

    unsigned qa[DP / 16][4], ga[DP / 16][4];
    load_a(qa, q + (long long)bh * T * D, r0, T, D);
    load_a(ga, dout + (long long)bh * T * D, r0, T, D);
    float L[2], E[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int i = r0 + g + 8 * h;
        L[h] = i < T ? lse[(long long)bh * T + i] : INFINITY;
        E[h] = i < T ? delta[(long long)bh * T + i] : 0.0f;
    }
    float dqp[DP / 8][4] = {};
    const int keys = visible_keys(min(T - 1, i0 + BR - 1), T, S, causal);
    for (int j0 = 0; j0 < keys; j0 += BC) {
        __syncthreads();
        load_tile(Ks, k, j0, S, D, BC, vec);
        load_tile(Vs, v, j0, S, D, BC, vec);
        __syncthreads();
        float s[8][4] = {}, dp[8][4] = {};
        product_abt(s, qa, Ks);                                      // S = Q K^T
        product_abt(dp, ga, Vs);                                     // dP = dO V^T
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int h = e / 2, i = r0 + g + 8 * h, j = j0 + nt * 8 + 2 * t + e % 2;
                const float p = (L[h] != INFINITY && visible(i, j, T, S, causal, pad_b)) ? expf(scale * s[nt][e] - L[h])
                                                                                      : 0.0f;
                dp[nt][e] = p * (dp[nt][e] - E[h]);                      // dS = P (dP - delta)
            }
        product_py(dqp, dp, Ks);                                     // dQ += dS K
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int i = r0 + g + 8 * h;
        if (i >= T) continue;
#pragma unroll
        for (int dt = 0; dt < DP / 8; ++dt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int d = dt * 8 + 2 * t + e;
                if (d < D) dq[((long long)bh * T + i) * D + d] = f2h(scale * dqp[dt][2 * h + e]);
            }
    }
}
