// The same relu loop (AVX2 compare + blend, what forward_block<Relu, float>
// compiled to before 9ec2335; 32 bytes here) at five placements,
// timed on 512-value blocks as the kernels run it. bN has N bytes of padding
// before the loop. Where the loop then starts depends on the compiler: with
// g++ 12.2 -O3 (and no -falign-loops) the five start 32, 48, 0, 16 and 24
// bytes into a 64-byte fetch window, so b16's spans two windows; on an AMD
// EPYC that made it about 1.7x slower on data in L1 (benchmarks/RESULTS.md,
// AVX2 section). Check the placement with objdump -d. Standalone, no torch:
//   g++ -O3 benchmarks/loop_alignment.cpp -o /tmp/loop_alignment
//   /tmp/loop_alignment 12 400    # log2(floats), calls per median
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

using Fn = void (*)(const float*, float*, long);

// aligned(64) fixes the function's start; the asm padding moves the loop.
#define RELU_LOOP(NAME, PAD)                                                         \
  __attribute__((noinline, aligned(64), target("avx2,fma"))) void NAME(              \
      const float* x, float* y, long n) {                                            \
    asm volatile(PAD);                                                               \
    for (long i = 0; i + 8 <= n; i += 8) {                                           \
      const __m256 v = _mm256_loadu_ps(x + i);                                       \
      const __m256 negative = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);     \
      _mm256_storeu_ps(y + i, _mm256_blendv_ps(v, _mm256_setzero_ps(), negative));   \
    }                                                                                \
  }
RELU_LOOP(b0, "")
RELU_LOOP(b16, ".skip 16, 0x90")
RELU_LOOP(b32, ".skip 32, 0x90")
RELU_LOOP(b48, ".skip 48, 0x90")
RELU_LOOP(b56, ".skip 56, 0x90")

int main(int argc, char** argv) {
  const long n = 1L << (argc > 1 ? atoi(argv[1]) : 12);
  const int calls = argc > 2 ? atoi(argv[2]) : 400;
  float* x = static_cast<float*>(aligned_alloc(64, n * 4));
  float* y = static_cast<float*>(aligned_alloc(64, n * 4));
  for (long i = 0; i < n; i++) x[i] = static_cast<float>(i % 7) - 3.f, y[i] = 0.f;
  const Fn fns[] = {b0, b16, b32, b48, b56};
  const char* names[] = {"b0", "b16", "b32", "b48", "b56"};
  for (int round = 0; round < 3; round++) {
    for (int f = 0; f < 5; f++) {
      std::vector<double> t;
      for (int c = 0; c < calls; c++) {
        const auto start = std::chrono::steady_clock::now();
        for (long b = 0; b < n; b += 512) fns[f](x + b, y + b, std::min(512L, n - b));
        t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
      }
      std::sort(t.begin(), t.end());
      printf("%-4s %7.2f us  ", names[f], t[calls / 2]);
    }
    printf("\n");
  }
}
