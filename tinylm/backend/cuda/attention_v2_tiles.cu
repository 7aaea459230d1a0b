// attention v2: FlashAttention-2 as small tiled matrix products, float32, head dim up to 64.
//
// v1 (attention_flash2.cu) gives each thread one whole query (or key) row: rows of D floats in
// per-thread arrays indexed at run time, which the compiler must keep in local memory (ptxas: 1.1 to
// 2 KiB of stack per thread), so every multiply-add there is also a local-memory access. Here a block
// of 128 threads works on a 32 x 32 tile of (query, key) pairs at a time, like a small matmul:
//
//   scores    each thread computes a 2 x 4 patch of S = Q K^T (or dP = dO V^T) from shared-memory
//             tiles, a row of queries against a column of keys, summing over the head dim;
//   updates   each thread owns a 2 x (DP/8) patch of an output (O, dQ, or dK and dV) in registers and
//             adds P V (or dS K, P^T dO, dS^T Q) to it, walking the 32 keys (or queries) of the tile.
//
// All per-thread arrays have compile-time sizes (DP, the head dim rounded up to 32 or 64, is a
// template parameter; columns past D are zero), so they live in registers. Same algorithm and masks
// as v1 and the derivation (derivations/flash_attention.md): forward keeps O and the row log-sum-exp;
// backward = delta (v1's flash_bwd_delta), dK/dV per key tile, dQ per query tile, no atomics.
// Layout as v1: q (B,H,T,D), k and v (B,H,S,D) C-contiguous, pad (B,S) uint8 (1 = padding key), causal
// aligned to the END of the keys (query i sees key j iff j <= i + S - T); a query that sees no key
// gets out = 0, lse = +inf.
//
// Shared memory rows are DP + 1 floats long, so the 4 keys a thread reads at one d fall in different
// banks. Largest (dK/dV, DP = 64): 4 tiles of 32 x 65 + two 32 x 33 = 41 KiB, under the 48 KiB static limit.

#ifndef INFINITY                  // NVRTC (CuPy's compiler) has no <math.h>: +inf from its bits
#define INFINITY __int_as_float(0x7f800000)
#endif

#define BR 32         // queries per tile
#define BC 32         // keys per tile
#define NT 128        // threads per block: 16 x 8, thread (ty, tx) = (tid / 8, tid % 8)

__device__ __forceinline__ int visible_keys(int i, int T, int S, int causal) {
    // keys [0, n) that query i may see before padding
    return causal ? min(S, i + S - T + 1) : S;
}

// rows [row0, row0 + ROWS) of src (n rows of D floats) into dst[ROWS][DP + 1]; zeros past n and past D
template <int ROWS, int DP>
__device__ __forceinline__ void load_tile(float (*dst)[DP + 1], const float* __restrict__ src, int row0, int n,
                                          int D, float mul) {
    for (int e = threadIdx.x; e < ROWS * DP; e += NT) {
        const int r = e / DP, d = e % DP, row = row0 + r;
        dst[r][d] = (row < n && d < D) ? src[(long long)row * D + d] * mul : 0.0f;
    }
}

// acc[r][c] += sum_d A[2 ty + r][d] B[4 tx + c][d]: this thread's 2 x 4 patch of A B^T (A, B are tiles)
template <int DP>
__device__ __forceinline__ void patch_abt(float acc[2][4], const float (*A)[DP + 1], const float (*B)[DP + 1],
                                          int ty, int tx) {
#pragma unroll
    for (int d = 0; d < DP; ++d) {
        const float a0 = A[2 * ty][d], a1 = A[2 * ty + 1][d];
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            const float bc = B[4 * tx + c][d];
            acc[0][c] += a0 * bc;
            acc[1][c] += a1 * bc;
        }
    }
}

// is (query i, key j) a pair the softmax sees?
__device__ __forceinline__ bool visible(int i, int j, int T, int S, int causal, const unsigned char* __restrict__ pad_b) {
    return i < T && j < S && !pad_b[j] && (!causal || j <= i + S - T);
}

template <int DP>
__device__ void fwd(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                    const unsigned char* __restrict__ pad, float* __restrict__ out, float* __restrict__ lse,
                    int H, int T, int S, int D, int causal, float scale) {
    constexpr int DW = DP / 8;                                    // head-dim columns per thread
    __shared__ float Qs[BR][DP + 1];                              // Q tile, pre-scaled
    __shared__ float KVs[BC][DP + 1];                             // K tile, then V tile
    __shared__ float Ss[BR][BC + 1];                              // scores, then probabilities
    __shared__ float m_s[BR], l_s[BR], alpha_s[BR];               // running max, running sum, rescale
    const int bh = blockIdx.y, i0 = blockIdx.x * BR, tid = threadIdx.x, ty = tid / 8, tx = tid % 8;
    const unsigned char* pad_b = pad + (long long)(bh / H) * S;
    q += (long long)bh * T * D;
    k += (long long)bh * S * D;
    v += (long long)bh * S * D;

    load_tile<BR, DP>(Qs, q, i0, T, D, scale);                    // s_ij = (scale q_i) . k_j
    if (tid < BR) {
        m_s[tid] = -INFINITY;
        l_s[tid] = 0.0f;
    }
    float o[2][DW] = {};                                          // O rows 2ty, 2ty+1; columns tx*DW ..
    const int keys = visible_keys(min(T - 1, i0 + BR - 1), T, S, causal);   // the block's last row sees most
    for (int j0 = 0; j0 < keys; j0 += BC) {
        __syncthreads();                                          // the last tile's readers are done
        load_tile<BC, DP>(KVs, k, j0, S, D, 1.0f);
        __syncthreads();
        float s[2][4] = {};
        patch_abt<DP>(s, Qs, KVs, ty, tx);                        // S = Q K^T, this thread's 2 x 4
#pragma unroll
        for (int r = 0; r < 2; ++r)
#pragma unroll
            for (int c = 0; c < 4; ++c)
                Ss[2 * ty + r][4 * tx + c] =
                    visible(i0 + 2 * ty + r, j0 + 4 * tx + c, T, S, causal, pad_b) ? s[r][c] : -INFINITY;
        __syncthreads();
        load_tile<BC, DP>(KVs, v, j0, S, D, 1.0f);                // K is no longer read: V takes its place
        if (tid < BR) {                                           // one thread per row: the online softmax
            const float m_old = m_s[tid];
            float m_new = m_old;
            for (int c = 0; c < BC; ++c) m_new = fmaxf(m_new, Ss[tid][c]);
            float alpha = 1.0f, l = l_s[tid];
            if (m_new > -INFINITY) {                              // else: nothing seen yet, P = 0
                alpha = expf(m_old - m_new);                      // rescales the old sums (0 at the start)
                l *= alpha;
                for (int c = 0; c < BC; ++c) {
                    const float p = expf(Ss[tid][c] - m_new);     // exp(-inf) = 0 for masked pairs
                    Ss[tid][c] = p;
                    l += p;
                }
            } else {
                for (int c = 0; c < BC; ++c) Ss[tid][c] = 0.0f;
            }
            m_s[tid] = m_new;
            l_s[tid] = l;
            alpha_s[tid] = alpha;
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < 2; ++r) {                             // O = alpha O + P V
            const float al = alpha_s[2 * ty + r];
#pragma unroll
            for (int e = 0; e < DW; ++e) o[r][e] *= al;
        }
        for (int c = 0; c < BC; ++c) {
            const float p0 = Ss[2 * ty][c], p1 = Ss[2 * ty + 1][c];
#pragma unroll
            for (int e = 0; e < DW; ++e) {
                const float vv = KVs[c][tx * DW + e];
                o[0][e] += p0 * vv;
                o[1][e] += p1 * vv;
            }
        }
    }
    __syncthreads();                                              // l_s, m_s final (also when no tile ran)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int row = 2 * ty + r, i = i0 + row;
        if (i >= T) continue;
        const float l = l_s[row], inv = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
        for (int e = 0; e < DW; ++e) {
            const int d = tx * DW + e;
            if (d < D) out[((long long)bh * T + i) * D + d] = o[r][e] * inv;
        }
        if (tx == 0) lse[(long long)bh * T + i] = l > 0.0f ? m_s[row] + logf(l) : INFINITY;
    }
}

// P_ij (recomputed from the lse) and dS_ij = P_ij (dP_ij - delta_i) for this thread's 2 x 4 patch
// (rows: queries i0 + 2ty + r, columns: keys j0 + 4tx + c), written to Ps and Ds when given
template <int DP>
__device__ __forceinline__ void probs_and_dscores(float (*Ps)[BC + 1], float (*Ds)[BC + 1],
                                                  const float (*Qs)[DP + 1], const float (*Gs)[DP + 1],
                                                  const float (*Ks)[DP + 1], const float (*Vs)[DP + 1],
                                                  const float* Ls, const float* Es, int i0, int j0, int T,
                                                  int S, int causal, float scale,
                                                  const unsigned char* __restrict__ pad_b, int ty, int tx) {
    float s[2][4] = {}, dp[2][4] = {};
    patch_abt<DP>(s, Qs, Ks, ty, tx);                             // S = Q K^T
    patch_abt<DP>(dp, Gs, Vs, ty, tx);                            // dP = dO V^T
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            const int row = 2 * ty + r, col = 4 * tx + c;
            const float L = Ls[row];
            const bool on = L != INFINITY && visible(i0 + row, j0 + col, T, S, causal, pad_b);
            const float p = on ? expf(scale * s[r][c] - L) : 0.0f;
            if (Ps) Ps[row][col] = p;
            Ds[row][col] = p * (dp[r][c] - Es[row]);
        }
}

template <int DP>
__device__ void bwd_dkdv(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                         const unsigned char* __restrict__ pad, const float* __restrict__ dout,
                         const float* __restrict__ lse, const float* __restrict__ delta, float* __restrict__ dk,
                         float* __restrict__ dv, int H, int T, int S, int D, int causal, float scale) {
    constexpr int DW = DP / 8;
    __shared__ float Ks[BC][DP + 1];
    __shared__ float Vs[BC][DP + 1];
    __shared__ float Qs[BR][DP + 1];
    __shared__ float Gs[BR][DP + 1];                              // dO rows
    __shared__ float Ps[BR][BC + 1];
    __shared__ float Ds[BR][BC + 1];                              // dS
    __shared__ float Ls[BR], Es[BR];                              // lse and delta of the query tile
    const int bh = blockIdx.y, j0 = blockIdx.x * BC, tid = threadIdx.x, ty = tid / 8, tx = tid % 8;
    const unsigned char* pad_b = pad + (long long)(bh / H) * S;
    q += (long long)bh * T * D;
    dout += (long long)bh * T * D;
    lse += (long long)bh * T;
    delta += (long long)bh * T;

    load_tile<BC, DP>(Ks, k + (long long)bh * S * D, j0, S, D, 1.0f);
    load_tile<BC, DP>(Vs, v + (long long)bh * S * D, j0, S, D, 1.0f);
    float dkp[2][DW] = {}, dvp[2][DW] = {};                       // keys j0 + 2ty + r; columns tx*DW ..
    // causal: key j is seen by queries i >= j - (S - T); start at the tile holding the first such query
    const int i_start = causal ? max(0, j0 - (S - T)) / BR * BR : 0;
    for (int i0 = i_start; i0 < T; i0 += BR) {
        __syncthreads();                                          // the last tile's readers are done
        load_tile<BR, DP>(Qs, q, i0, T, D, 1.0f);
        load_tile<BR, DP>(Gs, dout, i0, T, D, 1.0f);
        if (tid < BR) {
            Ls[tid] = i0 + tid < T ? lse[i0 + tid] : INFINITY;    // rows past T: P = 0
            Es[tid] = i0 + tid < T ? delta[i0 + tid] : 0.0f;
        }
        __syncthreads();
        probs_and_dscores<DP>(Ps, Ds, Qs, Gs, Ks, Vs, Ls, Es, i0, j0, T, S, causal, scale, pad_b, ty, tx);
        __syncthreads();
        for (int ii = 0; ii < BR; ++ii) {                         // dV_j += P_ij dO_i ; dK_j += dS_ij Q_i
            const float p0 = Ps[ii][2 * ty], p1 = Ps[ii][2 * ty + 1];
            const float ds0 = Ds[ii][2 * ty], ds1 = Ds[ii][2 * ty + 1];
#pragma unroll
            for (int e = 0; e < DW; ++e) {
                const float g = Gs[ii][tx * DW + e], qv = Qs[ii][tx * DW + e];
                dvp[0][e] += p0 * g;
                dvp[1][e] += p1 * g;
                dkp[0][e] += ds0 * qv;
                dkp[1][e] += ds1 * qv;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int j = j0 + 2 * ty + r;
        if (j >= S) continue;
#pragma unroll
        for (int e = 0; e < DW; ++e) {
            const int d = tx * DW + e;
            if (d >= D) continue;
            dk[((long long)bh * S + j) * D + d] = scale * dkp[r][e];   // dK_j = scale sum_i dS_ij Q_i
            dv[((long long)bh * S + j) * D + d] = dvp[r][e];
        }
    }
}

template <int DP>
__device__ void bwd_dq(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                       const unsigned char* __restrict__ pad, const float* __restrict__ dout,
                       const float* __restrict__ lse, const float* __restrict__ delta, float* __restrict__ dq,
                       int H, int T, int S, int D, int causal, float scale) {
    constexpr int DW = DP / 8;
    __shared__ float Qs[BR][DP + 1];
    __shared__ float Gs[BR][DP + 1];
    __shared__ float Ks[BC][DP + 1];
    __shared__ float Vs[BC][DP + 1];
    __shared__ float Ds[BR][BC + 1];
    __shared__ float Ls[BR], Es[BR];
    const int bh = blockIdx.y, i0 = blockIdx.x * BR, tid = threadIdx.x, ty = tid / 8, tx = tid % 8;
    const unsigned char* pad_b = pad + (long long)(bh / H) * S;
    k += (long long)bh * S * D;
    v += (long long)bh * S * D;

    load_tile<BR, DP>(Qs, q + (long long)bh * T * D, i0, T, D, 1.0f);
    load_tile<BR, DP>(Gs, dout + (long long)bh * T * D, i0, T, D, 1.0f);
    if (tid < BR) {
        Ls[tid] = i0 + tid < T ? lse[(long long)bh * T + i0 + tid] : INFINITY;
        Es[tid] = i0 + tid < T ? delta[(long long)bh * T + i0 + tid] : 0.0f;
    }
    float dqp[2][DW] = {};                                        // queries i0 + 2ty + r; columns tx*DW ..
    const int keys = visible_keys(min(T - 1, i0 + BR - 1), T, S, causal);
    for (int j0 = 0; j0 < keys; j0 += BC) {
        __syncthreads();
        load_tile<BC, DP>(Ks, k, j0, S, D, 1.0f);
        load_tile<BC, DP>(Vs, v, j0, S, D, 1.0f);
        __syncthreads();
        probs_and_dscores<DP>(nullptr, Ds, Qs, Gs, Ks, Vs, Ls, Es, i0, j0, T, S, causal, scale, pad_b, ty, tx);
        __syncthreads();
        for (int c = 0; c < BC; ++c) {                            // dQ_i += dS_ij K_j
            const float ds0 = Ds[2 * ty][c], ds1 = Ds[2 * ty + 1][c];
#pragma unroll
            for (int e = 0; e < DW; ++e) {
                const float kv = Ks[c][tx * DW + e];
                dqp[0][e] += ds0 * kv;
                dqp[1][e] += ds1 * kv;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int i = i0 + 2 * ty + r;
        if (i >= T) continue;
#pragma unroll
        for (int e = 0; e < DW; ++e) {
            const int d = tx * DW + e;
            if (d < D) dq[((long long)bh * T + i) * D + d] = scale * dqp[r][e];   // dQ_i = scale sum_j dS_ij K_j
        }
    }
}

// Entry points, one per head-dim bucket: DP = 32 for D <= 32, DP = 64 for 32 < D <= 64 (written out,
// not generated by a macro, so that each reads as the kernel it is).

extern "C" __global__ void __launch_bounds__(NT)
attn_tiles_fwd_d32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                    const unsigned char* __restrict__ pad, float* __restrict__ out, float* __restrict__ lse, int H,
                    int T, int S, int D, int causal, float scale) {
    fwd<32>(q, k, v, pad, out, lse, H, T, S, D, causal, scale);
}

extern "C" __global__ void __launch_bounds__(NT)
attn_tiles_bwd_dkdv_d32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                         const unsigned char* __restrict__ pad, const float* __restrict__ dout,
                         const float* __restrict__ lse, const float* __restrict__ delta, float* __restrict__ dk,
                         float* __restrict__ dv, int H, int T, int S, int D, int causal, float scale) {
    bwd_dkdv<32>(q, k, v, pad, dout, lse, delta, dk, dv, H, T, S, D, causal, scale);
}

extern "C" __global__ void __launch_bounds__(NT)
attn_tiles_bwd_dq_d32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                       const unsigned char* __restrict__ pad, const float* __restrict__ dout,
                       const float* __restrict__ lse, const float* __restrict__ delta, float* __restrict__ dq, int H,
                       int T, int S, int D, int causal, float scale) {
    bwd_dq<32>(q, k, v, pad, dout, lse, delta, dq, H, T, S, D, causal, scale);
}

extern "C" __global__ void __launch_bounds__(NT)
attn_tiles_fwd_d64(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                    const unsigned char* __restrict__ pad, float* __restrict__ out, float* __restrict__ lse, int H,
                    int T, int S, int D, int causal, float scale) {
    fwd<64>(q, k, v, pad, out, lse, H, T, S, D, causal, scale);
}

extern "C" __global__ void __launch_bounds__(NT)
attn_tiles_bwd_dkdv_d64(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                         const unsigned char* __restrict__ pad, const float* __restrict__ dout,
                         const float* __restrict__ lse, const float* __restrict__ delta, float* __restrict__ dk,
                         float* __restrict__ dv, int H, int T, int S, int D, int causal, float scale) {
    bwd_dkdv<64>(q, k, v, pad, dout, lse, delta, dk, dv, H, T, S, D, causal, scale);
}

extern "C" __global__ void __launch_bounds__(NT)
attn_tiles_bwd_dq_d64(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                       const unsigned char* __restrict__ pad, const float* __restrict__ dout,
                       const float* __restrict__ lse, const float* __restrict__ delta, float* __restrict__ dq, int H,
                       int T, int S, int D, int causal, float scale) {
    bwd_dq<64>(q, k, v, pad, dout, lse, delta, dq, H, T, S, D, causal, scale);
}
