// matmul v2: shared-memory tiles plus a 4 x 4 register patch per thread.
//
// A block of 256 threads computes a 64 x 64 tile of C. K is walked in steps of 16: the block
// copies the 64 x 16 slab of A (stored transposed, As[k][m]) and the 16 x 64 slab of B into shared
// memory, then each thread multiplies a column of 4 A values by a row of 4 B values into its
// 4 x 4 accumulator patch held in registers: 8 shared-memory loads feed 16 multiply-adds, and each
// global element is loaded once per block instead of once per output.
// Row-major float32, batched over blockIdx.z (stride 0 repeats a broadcast operand); edges are
// handled by zero-filling the slabs and masking the final store, so M, N, K can be anything.

#define BM 64    // rows of C per block
#define BN 64    // columns of C per block
#define BK 16    // K step
#define TM 4     // rows per thread
#define TN 4     // columns per thread
#define NTHREADS ((BM / TM) * (BN / TN))   // 256

extern "C" __global__ void __launch_bounds__(NTHREADS)
matmul_tiled(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C,
             int M, int N, int K, long long strideA, long long strideB, long long strideC) {
    __shared__ float As[BK][BM + 4];   // +4: rows of As do not start on the same bank
    __shared__ float Bs[BK][BN];
    A += blockIdx.z * strideA;
    B += blockIdx.z * strideB;
    C += blockIdx.z * strideC;
    const int row0 = blockIdx.y * BM, col0 = blockIdx.x * BN;
    const int tx = threadIdx.x % (BN / TN), ty = threadIdx.x / (BN / TN);
    float acc[TM][TN] = {};

    for (int k0 = 0; k0 < K; k0 += BK) {
        for (int e = threadIdx.x; e < BM * BK; e += NTHREADS) {          // A slab, transposed
            const int m = e / BK, k = e % BK;
            const int gm = row0 + m, gk = k0 + k;
            As[k][m] = (gm < M && gk < K) ? A[(long long)gm * K + gk] : 0.0f;
        }
        for (int e = threadIdx.x; e < BK * BN; e += NTHREADS) {          // B slab (coalesced along n)
            const int k = e / BN, n = e % BN;
            const int gk = k0 + k, gn = col0 + n;
            Bs[k][n] = (gk < K && gn < N) ? B[(long long)gk * N + gn] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < BK; ++k) {
            float a[TM], b[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) a[i] = As[k][ty * TM + i];
#pragma unroll
            for (int j = 0; j < TN; ++j) b[j] = Bs[k][tx * TN + j];
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] += a[i] * b[j];       // outer product in registers
        }
        __syncthreads();                                                   // before the next slab overwrites
    }
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int m = row0 + ty * TM + i;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int n = col0 + tx * TN + j;
            if (m < M && n < N) C[(long long)m * N + n] = acc[i][j];
        }
    }
}
