// Every CPU block function of csrc/cpu/activation_kernels.h, at every length
// from 1 to 600, on heap arrays of exactly that many values (the f' buffers:
// kBlock values, as in the kernels). Built per ISA by tests/test_cpu_blocks.py
// with AddressSanitizer, which reports any read or write past an array: the
// blocks work on packs of several vectors (lanes.h), and a partial pack must
// touch only the values of its tail.
//
//   block_bounds_check     prints "checked N lengths" and exits 0, or ASan's report
#include <cstdio>
#include <vector>

#include "cpu/activation_kernels.h"

using namespace artderiv;
using namespace artderiv::cpu::CPU_CAPABILITY;

template <class T>
VecParams<T> params(std::initializer_list<double> values) {
  Params<double> p{};
  for (double v : values) p.v[p.count++] = v;
  return broadcast<T>(p);
}

template <class T>
void float_blocks(int64_t n) {
  const auto none = params<T>({});
  const auto beta = params<T>({1.0});
  const int64_t in_block = std::min(n, kBlock);
  std::vector<T> x(n), g(n), y(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = T(i % 97) * T(0.05) - T(2);
    g[i] = T(1);
  }
  std::vector<T> exact(kBlock);  // the kernels' f' buffers hold a whole block
  forward_block<Sigmoid, T>(x.data(), y.data(), n, none);
  forward_block<Relu, T>(x.data(), y.data(), n, none);
  exact_block<Sigmoid, false, T>(x.data(), exact.data(), in_block, none, T(0));
  exact_block<Tanh, true, T>(x.data(), exact.data(), in_block, none, T(0));
  backward_block<SigmoidRamp, true, true, T>(g.data(), x.data(), exact.data(), exact.data(), y.data(), in_block,
                                             beta, T(0.3), T(0));
  backward_block<ExactPlus, false, true, T>(g.data(), x.data(), exact.data(), exact.data(), y.data(), in_block,
                                            beta, T(0), T(0));
  backward_block<Exact, false, false, T>(g.data(), x.data(), exact.data(), exact.data(), y.data(), in_block, none,
                                         T(0), T(0));
  output_backward_block<Sigmoid, Exact, T>(g.data(), x.data(), y.data(), n, none, none);
}

template <class S>
void half_blocks(int64_t n) {
  const auto none = params<float>({});
  const auto beta = params<float>({1.0});
  const int64_t in_block = std::min(n, kBlock);
  std::vector<S> x(n), g(n), y(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(i % 97) * 0.05f - 2.f;
    g[i] = 1.f;
  }
  std::vector<float> exact(kBlock);
  forward_half_block<Sigmoid, S>(x.data(), y.data(), n, none);
  forward_half_block<Relu, S>(x.data(), y.data(), n, none);
  exact_half_block<Sigmoid, false, S>(x.data(), exact.data(), in_block, none, 0.f);
  exact_half_block<Tanh, true, S>(x.data(), exact.data(), in_block, none, 0.f);
  backward_half_block<SigmoidRamp, true, true, S>(g.data(), x.data(), exact.data(), exact.data(), y.data(),
                                                  in_block, beta, 0.3f, 0.f);
  backward_half_block<ExactPlus, false, true, S>(g.data(), x.data(), exact.data(), exact.data(), y.data(),
                                                 in_block, beta, 0.f, 0.f);
  backward_half_block<Exact, false, false, S>(g.data(), x.data(), exact.data(), exact.data(), y.data(), in_block,
                                              none, 0.f, 0.f);
  output_backward_half_block<Sigmoid, Exact, S>(g.data(), x.data(), y.data(), n, none, none);
}

int main() {
  int64_t checked = 0;
  for (int64_t n = 1; n <= 600; ++n) {
    float_blocks<float>(n);
    float_blocks<double>(n);
    half_blocks<at::BFloat16>(n);
    half_blocks<at::Half>(n);
    ++checked;
  }
  std::printf("checked %lld lengths\n", static_cast<long long>(checked));
  return 0;
}
