// matmul v3: 128 x 128 block tiles, an 8 x 8 register patch per thread, 16-byte loads and stores.
//
// v2 gives each of its 256 threads a 4 x 4 patch of C: 8 shared-memory loads feed 16 multiply-adds,
// so shared memory, not arithmetic, sets its pace. Here each thread owns an 8 x 8 patch (64
// accumulators in registers): per step of k it loads 8 values of A and 8 of B (four 16-byte
// shared-memory loads) for 64 multiply-adds, twice v2's ratio, and a block tile of 128 x 128 reads
// each global element half as often as v2's 64 x 64. With vec = 1 the slabs come in, and C goes
// out, as float4 (16-byte) accesses: the host passes it when K and N are multiples of 4 and A, B, C
// start 16-byte aligned, so every row does (the usual case). Other shapes, and tiles that hang over
// an edge, take guarded scalar loads and stores, so M, N, K can be anything.
//
// Shared memory: As[k][m] holds the 128 x 8 slab of A transposed, so the compute loop reads 8
// consecutive m as two float4; Bs[k][n] the 8 x 128 slab of B. 2 x 8 x 128 x 4 B = 8 KiB.
// Thread layout: 256 threads as 16 x 16; thread (ty, tx) owns rows ty*8..+8, columns tx*8..+8.
// Row-major float32, batched over blockIdx.z (stride 0 repeats a broadcast operand).

#define BM 128
#define BN 128
#define BK 8
#define TM 8
#define TN 8
#define NTHREADS ((BM / TM) * (BN / TN))   // 256

extern "C" __global__ void __launch_bounds__(NTHREADS)
matmul_blocktile(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C,
                 int M, int N, int K, long long strideA, long long strideB, long long strideC, int vec) {
    __shared__ __align__(16) float As[BK][BM];
    __shared__ __align__(16) float Bs[BK][BN];
    A += blockIdx.z * strideA;
    B += blockIdx.z * strideB;
    C += blockIdx.z * strideC;
    const int row0 = blockIdx.y * BM, col0 = blockIdx.x * BN;
    const int tid = threadIdx.x;
    const int tx = tid % (BN / TN), ty = tid / (BN / TN);
    // which 4 slab elements this thread loads: A slab 128 x 8 = 256 float4 along k; B slab 8 x 128 along n
    const int a_m = tid / 2, a_k = (tid % 2) * 4;
    const int b_k = tid / 32, b_n = (tid % 32) * 4;

    float acc[TM][TN] = {};
    for (int k0 = 0; k0 < K; k0 += BK) {
        const int gm = row0 + a_m, gk = k0 + a_k;
        if (vec && gm < M && gk + 3 < K) {
            const float4 a4 = *reinterpret_cast<const float4*>(&A[(long long)gm * K + gk]);
            As[a_k + 0][a_m] = a4.x;
            As[a_k + 1][a_m] = a4.y;
            As[a_k + 2][a_m] = a4.z;
            As[a_k + 3][a_m] = a4.w;
        } else {
#pragma unroll
            for (int i = 0; i < 4; ++i)
                As[a_k + i][a_m] = (gm < M && gk + i < K) ? A[(long long)gm * K + gk + i] : 0.0f;
        }
        const int bk = k0 + b_k, gn = col0 + b_n;
        if (vec && bk < K && gn + 3 < N) {
            *reinterpret_cast<float4*>(&Bs[b_k][b_n]) = *reinterpret_cast<const float4*>(&B[(long long)bk * N + gn]);
        } else {
#pragma unroll
            for (int j = 0; j < 4; ++j)
                Bs[b_k][b_n + j] = (bk < K && gn + j < N) ? B[(long long)bk * N + gn + j] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < BK; ++k) {
            const float4 a0 = *reinterpret_cast<const float4*>(&As[k][ty * TM]);      // four 16-byte
            const float4 a1 = *reinterpret_cast<const float4*>(&As[k][ty * TM + 4]);  // shared-memory loads
            const float4 b0 = *reinterpret_cast<const float4*>(&Bs[k][tx * TN]);
            const float4 b1 = *reinterpret_cast<const float4*>(&Bs[k][tx * TN + 4]);
            const float a[TM] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            const float b[TN] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
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
        if (m >= M) break;
        const int n = col0 + tx * TN;
        float* c = &C[(long long)m * N + n];
        if (vec && n + TN <= N) {
            *reinterpret_cast<float4*>(c) = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
            *reinterpret_cast<float4*>(c + 4) = make_float4(acc[i][4], acc[i][5], acc[i][6], acc[i][7]);
        } else {
#pragma unroll
            for (int j = 0; j < TN; ++j)
                if (n + j < N) c[j] = acc[i][j];
        }
    }
}
