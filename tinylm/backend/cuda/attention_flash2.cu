// attention v1: FlashAttention-2 style forward and backward, float32.
//
// Same algorithm as the Numba kernels (tinylm/backend/numba_attention.py) and the derivation
// (derivations/flash_attention.md): the forward visits the keys in shared-memory tiles with an online
// softmax and keeps only O and the row log-sum-exp; the backward recomputes P from the lse.
//
// Layout: q (B,H,T,D), k and v (B,H,S,D), C-contiguous; pad (B,S) uint8, 1 = padding key (all 0 when
// the caller has no mask); D <= D_MAX. Masks: causal aligns queries to the END of the keys
// (query i sees key j iff j <= i + S - T); a query that sees no key gets out = 0, lse = +inf, and so
// P = exp(s - inf) = 0 and zero gradients in the backward.
//
// Kernels (grid.y = B*H, one thread per query row or per key row):
//   flash_fwd         one thread per query; K/V tiles of BC keys in shared memory
//   flash_bwd_delta   delta_i = dO_i . O_i  (the softmax backward's row sum)
//   flash_bwd_dkdv    one thread per key; Q/dO tiles of BR queries in shared memory; dK, dV in registers
//   flash_bwd_dq      one thread per query, like the forward; dQ in registers (no atomics anywhere)

#ifndef INFINITY                  // NVRTC (CuPy's compiler) has no <math.h>: +inf from its bits
#define INFINITY __int_as_float(0x7f800000)
#endif

#define D_MAX 128
#define BC 32      // keys per shared-memory tile (forward, dQ): 2 x 32 x 128 x 4 B = 32 KiB
#define BR 32      // queries per shared-memory tile (dK/dV)

__device__ __forceinline__ int key_limit(int i, int T, int S, int causal) {
    // keys [0, limit) that query i may see before padding
    return causal ? min(S, i + S - T + 1) : S;
}

extern "C" __global__ void flash_fwd(const float* __restrict__ q, const float* __restrict__ k,
                                     const float* __restrict__ v, const unsigned char* __restrict__ pad,
                                     float* __restrict__ out, float* __restrict__ lse,
                                     int H, int T, int S, int D, int causal, float scale) {
    __shared__ float Ks[BC][D_MAX];
    __shared__ float Vs[BC][D_MAX];
    __shared__ unsigned char Ps[BC];
    const int bh = blockIdx.y, b = bh / H;
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const bool active = i < T;
    q += (long long)bh * T * D;
    k += (long long)bh * S * D;
    v += (long long)bh * S * D;

    float qi[D_MAX], oi[D_MAX];
    for (int d = 0; d < D; ++d) {
        qi[d] = active ? q[(long long)i * D + d] * scale : 0.0f;   // pre-scaled: s_ij = qi . k_j
        oi[d] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;                                 // running max and running sum
    const int hi = active ? key_limit(i, T, S, causal) : 0;
    const int i_last = min(T - 1, (int)(blockIdx.x * blockDim.x + blockDim.x - 1));
    const int block_hi = key_limit(i_last, T, S, causal);          // the block's last row sees the most

    for (int j0 = 0; j0 < block_hi; j0 += BC) {
        for (int e = threadIdx.x; e < BC * D; e += blockDim.x) {  // cooperative tile load
            const int jj = e / D, d = e % D, j = j0 + jj;
            Ks[jj][d] = j < S ? k[(long long)j * D + d] : 0.0f;
            Vs[jj][d] = j < S ? v[(long long)j * D + d] : 0.0f;
        }
        for (int jj = threadIdx.x; jj < BC; jj += blockDim.x)
            Ps[jj] = (j0 + jj < S) ? pad[(long long)b * S + j0 + jj] : 1;
        __syncthreads();
        if (active) {
            float s[BC];
            float m_tile = -INFINITY;
            for (int jj = 0; jj < BC; ++jj) {
                s[jj] = -INFINITY;
                if (j0 + jj < hi && !Ps[jj]) {
                    float acc = 0.0f;
                    for (int d = 0; d < D; ++d) acc += qi[d] * Ks[jj][d];
                    s[jj] = acc;
                    m_tile = fmaxf(m_tile, acc);
                }
            }
            if (m_tile > -INFINITY) {
                const float m_new = fmaxf(m, m_tile);
                const float alpha = expf(m - m_new);               // rescale the old sums (0 at the start)
                l *= alpha;
                for (int d = 0; d < D; ++d) oi[d] *= alpha;
                for (int jj = 0; jj < BC; ++jj) {
                    const float p = (s[jj] == -INFINITY) ? 0.0f : expf(s[jj] - m_new);
                    l += p;
                    for (int d = 0; d < D; ++d) oi[d] += p * Vs[jj][d];
                }
                m = m_new;
            }
        }
        __syncthreads();                                           // before the next tile overwrites
    }
    if (active) {
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (int d = 0; d < D; ++d) out[((long long)bh * T + i) * D + d] = oi[d] * inv;
        lse[(long long)bh * T + i] = l > 0.0f ? m + logf(l) : INFINITY;
    }
}

extern "C" __global__ void flash_bwd_delta(const float* __restrict__ out, const float* __restrict__ dout,
                                           float* __restrict__ delta, long long rows, int D) {
    const long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    float acc = 0.0f;
    for (int d = 0; d < D; ++d) acc += out[r * D + d] * dout[r * D + d];
    delta[r] = acc;
}

extern "C" __global__ void flash_bwd_dkdv(const float* __restrict__ q, const float* __restrict__ k,
                                          const float* __restrict__ v, const unsigned char* __restrict__ pad,
                                          const float* __restrict__ dout, const float* __restrict__ lse,
                                          const float* __restrict__ delta, float* __restrict__ dk,
                                          float* __restrict__ dv, int H, int T, int S, int D, int causal,
                                          float scale) {
    __shared__ float Qs[BR][D_MAX];
    __shared__ float Gs[BR][D_MAX];                                // dO rows
    __shared__ float Ls[BR], Es[BR];                               // lse and delta of those rows
    const int bh = blockIdx.y, b = bh / H;
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    const bool active = j < S && !pad[(long long)b * S + min(j, S - 1)];
    q += (long long)bh * T * D;
    dout += (long long)bh * T * D;
    lse += (long long)bh * T;
    delta += (long long)bh * T;

    float kj[D_MAX], vj[D_MAX], dkj[D_MAX], dvj[D_MAX];
    for (int d = 0; d < D; ++d) {
        kj[d] = j < S ? k[((long long)bh * S + j) * D + d] : 0.0f;
        vj[d] = j < S ? v[((long long)bh * S + j) * D + d] : 0.0f;
        dkj[d] = dvj[d] = 0.0f;
    }
    // causal: key j is seen by queries i >= j - (S - T); start at the block's first key
    const int j_first = blockIdx.x * blockDim.x;
    const int i_start = causal ? max(0, j_first - (S - T)) / BR * BR : 0;

    for (int i0 = i_start; i0 < T; i0 += BR) {
        for (int e = threadIdx.x; e < BR * D; e += blockDim.x) {
            const int ii = e / D, d = e % D, i = i0 + ii;
            Qs[ii][d] = i < T ? q[(long long)i * D + d] : 0.0f;
            Gs[ii][d] = i < T ? dout[(long long)i * D + d] : 0.0f;
        }
        for (int ii = threadIdx.x; ii < BR; ii += blockDim.x) {
            Ls[ii] = i0 + ii < T ? lse[i0 + ii] : INFINITY;        // rows past T: P = 0
            Es[ii] = i0 + ii < T ? delta[i0 + ii] : 0.0f;
        }
        __syncthreads();
        if (active) {
            for (int ii = 0; ii < BR; ++ii) {
                const int i = i0 + ii;
                if (Ls[ii] == INFINITY || (causal && j > i + S - T)) continue;
                float s = 0.0f, dp = 0.0f;
                for (int d = 0; d < D; ++d) {
                    s += Qs[ii][d] * kj[d];
                    dp += Gs[ii][d] * vj[d];
                }
                const float p = expf(scale * s - Ls[ii]);          // P_ij recomputed from the lse
                const float ds = p * (dp - Es[ii]);                // dS_ij = P_ij (dP_ij - delta_i)
                for (int d = 0; d < D; ++d) {
                    dvj[d] += p * Gs[ii][d];                       // dV_j += P_ij dO_i
                    dkj[d] += scale * ds * Qs[ii][d];              // dK_j += scale dS_ij Q_i
                }
            }
        }
        __syncthreads();
    }
    if (j < S) {
        for (int d = 0; d < D; ++d) {
            dk[((long long)bh * S + j) * D + d] = dkj[d];
            dv[((long long)bh * S + j) * D + d] = dvj[d];
        }
    }
}

extern "C" __global__ void flash_bwd_dq(const float* __restrict__ q, const float* __restrict__ k,
                                        const float* __restrict__ v, const unsigned char* __restrict__ pad,
                                        const float* __restrict__ dout, const float* __restrict__ lse,
                                        const float* __restrict__ delta, float* __restrict__ dq,
                                        int H, int T, int S, int D, int causal, float scale) {
    __shared__ float Ks[BC][D_MAX];
    __shared__ float Vs[BC][D_MAX];
    __shared__ unsigned char Ps[BC];
    const int bh = blockIdx.y, b = bh / H;
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const bool in_range = i < T;
    const long long row = (long long)bh * T + min(i, T - 1);
    const float L = in_range ? lse[row] : INFINITY;
    const bool active = in_range && L != INFINITY;                 // a row that saw no key: dQ = 0
    k += (long long)bh * S * D;
    v += (long long)bh * S * D;

    float qi[D_MAX], gi[D_MAX], dqi[D_MAX];
    for (int d = 0; d < D; ++d) {
        qi[d] = in_range ? q[row * D + d] : 0.0f;
        gi[d] = in_range ? dout[row * D + d] : 0.0f;
        dqi[d] = 0.0f;
    }
    const float delta_i = in_range ? delta[row] : 0.0f;
    const int hi = in_range ? key_limit(i, T, S, causal) : 0;
    const int i_last = min(T - 1, (int)(blockIdx.x * blockDim.x + blockDim.x - 1));
    const int block_hi = key_limit(i_last, T, S, causal);

    for (int j0 = 0; j0 < block_hi; j0 += BC) {
        for (int e = threadIdx.x; e < BC * D; e += blockDim.x) {
            const int jj = e / D, d = e % D, j = j0 + jj;
            Ks[jj][d] = j < S ? k[(long long)j * D + d] : 0.0f;
            Vs[jj][d] = j < S ? v[(long long)j * D + d] : 0.0f;
        }
        for (int jj = threadIdx.x; jj < BC; jj += blockDim.x)
            Ps[jj] = (j0 + jj < S) ? pad[(long long)b * S + j0 + jj] : 1;
        __syncthreads();
        if (active) {
            for (int jj = 0; jj < BC; ++jj) {
                if (j0 + jj >= hi || Ps[jj]) continue;
                float s = 0.0f, dp = 0.0f;
                for (int d = 0; d < D; ++d) {
                    s += qi[d] * Ks[jj][d];
                    dp += gi[d] * Vs[jj][d];
                }
                const float p = expf(scale * s - L);
                const float ds = p * (dp - delta_i);
                for (int d = 0; d < D; ++d) dqi[d] += scale * ds * Ks[jj][d];   // dQ_i += scale dS_ij K_j
            }
        }
        __syncthreads();
    }
    if (in_range)
        for (int d = 0; d < D; ++d) dq[row * D + d] = dqi[d];
}
