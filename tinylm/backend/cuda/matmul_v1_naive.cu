// matmul v1: naive. One thread per output element C[m, n] = sum_k A[m, k] B[k, n].
//
// Row-major float32, batched over blockIdx.z (stride 0 repeats a broadcast operand). Each thread
// walks a row of A and a column of B straight from global memory: neighbouring threads (n, n+1)
// read neighbouring B elements (coalesced) and the same A element (broadcast), but nothing is
// reused through shared memory, so every multiply-add costs two global loads.
// Launched by tinylm/backend/cupy_kernels.py with 16 x 16 thread blocks.

extern "C" __global__ void matmul_naive(const float* __restrict__ A, const float* __restrict__ B,
                                        float* __restrict__ C, int M, int N, int K,
                                        long long strideA, long long strideB, long long strideC) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    const int m = blockIdx.y * blockDim.y + threadIdx.y;
    A += blockIdx.z * strideA;
    B += blockIdx.z * strideB;
    C += blockIdx.z * strideC;
    if (m >= M || n >= N) return;
    float acc = 0.0f;
    for (int k = 0; k < K; ++k) {
        acc += A[(long long)m * K + k] * B[(long long)k * N + n];
    }
    C[(long long)m * N + n] = acc;
}
