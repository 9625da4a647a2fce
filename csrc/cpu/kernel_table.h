// The CPU kernels are compiled once per instruction set (DEFAULT, AVX2,
// AVX512, ATen's names and flags, and AVX512BF16: AVX512 plus AVX512-BF16);
// each build exports one KernelTable and activation_cpu.cpp picks the table at
// run time from at::get_cpu_capability(), which honours ATEN_CPU_CAPABILITY.
#pragma once

#include <ATen/TensorIterator.h>

#include "../catalog.h"

namespace artderiv {
namespace cpu {

// The operands of one call: a TensorIterator (any strides, broadcast grads,
// parallel), or, when the operands are all dense with the same strides, one
// thread's chunk of them as flat arrays (activation_cpu.cpp splits them), which
// skips building an iterator (about a microsecond per call). Results do not
// depend on which.
struct Operands {
  at::TensorIteratorBase* iter;  // null: flat arrays below
  char* data[3];                 // output, then inputs (flat arrays only)
  int64_t numel;
  at::ScalarType dtype;
};

struct KernelTable {
  const char* isa;
  // operands: output y, input x.
  void (*forward)(const Operands& ops, const ActivationSpec& act);
  // operands: output grad_x, inputs grad, saved (x, or y for SaveMode::Output).
  // blend is in [0, 1].
  void (*backward)(const Operands& ops, SaveMode save, const ActivationSpec& act,
                   const DerivativeSpec& deriv, double blend);
};

extern const KernelTable kernels_DEFAULT;
extern const KernelTable kernels_AVX2;
extern const KernelTable kernels_AVX512;
extern const KernelTable kernels_AVX512BF16;

}  // namespace cpu
}  // namespace artderiv
