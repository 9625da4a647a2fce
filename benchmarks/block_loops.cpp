// The CPU kernels' inner loops alone: forward_half_block, backward_block and
// backward_half_block of csrc/cpu/activation_kernels.h on one block of data in
// L1, no dispatcher, no TensorIterator, no threads. Each line is the fastest of
// 30 rounds of `calls` calls, in ns per value: what the loop's instructions
// cost, without the memory system (bench.py measures the whole op). Compare
// two source trees by building this against each (-I<tree>/csrc) and running
// the two binaries in turn: the VM's noise moves single runs by 20% or more.
//
//   TORCH=$(python -c 'import torch, os; print(os.path.dirname(torch.__file__))')
//   g++ -O3 -std=c++20 -ffp-contract=off -mavx2 -mfma -mf16c -mbmi2 -falign-loops=64 \
//       -I$TORCH/include -I$TORCH/include/torch/csrc/api/include -Icsrc \
//       benchmarks/block_loops.cpp -o /tmp/block_loops \
//       -L$TORCH/lib -lc10 -ltorch_cpu -Wl,-rpath,$TORCH/lib
//   /tmp/block_loops 512 2000    # values per block (at most kBlock), calls per round
//
// The flags are those of the AVX2 kernel build (setup.py, csrc/cpu/isa_flags.txt).
// For the AVX512 build, use the avx512 line of isa_flags.txt and add
// -DCPU_CAPABILITY=AVX512 -DCPU_CAPABILITY_AVX512; for AVX512BF16, its line and
// -DCPU_CAPABILITY=AVX512BF16 -DCPU_CAPABILITY_AVX512.
#ifndef CPU_CAPABILITY
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#endif
#include "cpu/activation_kernels.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

using namespace artderiv;
using namespace artderiv::cpu::CPU_CAPABILITY;

template <class F>
double fastest_ns(const F& f, int calls) {
  double best = 1e300;
  for (int round = 0; round < 30; ++round) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) f();
    const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
    best = std::min(best, took.count() / calls);
  }
  return best;
}

template <class T>
VecParams<T> params(std::initializer_list<double> values) {
  Params<double> p{};
  for (double v : values) p.v[p.count++] = v;
  return broadcast<T>(p);
}

int main(int argc, char** argv) {
  const int64_t n = std::min<int64_t>(argc > 1 ? atol(argv[1]) : kBlock, kBlock);
  const int calls = argc > 2 ? atoi(argv[2]) : 2000;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> xf(n), gf(n), outf(n);
  std::vector<c10::BFloat16> xb(n), gb(n), outb(n);
  for (int64_t i = 0; i < n; ++i) {
    xf[i] = normal(rng);
    gf[i] = normal(rng);
    xb[i] = xf[i];
    gb[i] = gf[i];
  }
  const auto none_f = params<float>({});
  const auto atan_p = params<float>({2.0});
  const auto sigmoid_p = params<float>({1.0});
  const auto line = [&](const char* name, double ns) { std::printf("%-34s %7.3f ns/value\n", name, ns / n); };

  line("forward relu float32", fastest_ns([&] { forward_block<Relu, float>(xf.data(), outf.data(), n, none_f); }, calls));
  line("forward relu bfloat16", fastest_ns([&] { forward_half_block<Relu, c10::BFloat16>(xb.data(), outb.data(), n, none_f); }, calls));
  line("forward sigmoid float32", fastest_ns([&] { forward_block<Sigmoid, float>(xf.data(), outf.data(), n, none_f); }, calls));
  line("forward sigmoid bfloat16", fastest_ns([&] { forward_half_block<Sigmoid, c10::BFloat16>(xb.data(), outb.data(), n, none_f); }, calls));
  line("backward atan float32", fastest_ns([&] {
    backward_block<Atan, false, true, float>(gf.data(), xf.data(), nullptr, nullptr, outf.data(), n, atan_p, 0.f, 0.f);
  }, calls));
  line("backward atan bfloat16", fastest_ns([&] {
    backward_half_block<Atan, false, true, c10::BFloat16>(gb.data(), xb.data(), nullptr, nullptr, outb.data(), n, atan_p, 0.f, 0.f);
  }, calls));
  line("backward sigmoid float32", fastest_ns([&] {
    backward_block<SigmoidRamp, false, true, float>(gf.data(), xf.data(), nullptr, nullptr, outf.data(), n, sigmoid_p, 0.f, 0.f);
  }, calls));
  line("backward sigmoid bfloat16", fastest_ns([&] {
    backward_half_block<SigmoidRamp, false, true, c10::BFloat16>(gb.data(), xb.data(), nullptr, nullptr, outb.data(), n, sigmoid_p, 0.f, 0.f);
  }, calls));
  return 0;
}
