// The CPU kernels are compiled once per instruction set (DEFAULT, AVX2,
// AVX512, ATen's names and flags); each build exports one KernelTable and
// activation_cpu.cpp picks the table at run time from at::get_cpu_capability(),
// which honours ATEN_CPU_CAPABILITY.
#pragma once

#include <ATen/TensorIterator.h>

#include "../catalog.h"

namespace artderiv {
namespace cpu {

struct KernelTable {
  const char* isa;
  // iter: output y, input x.
  void (*forward)(at::TensorIteratorBase& iter, const ActivationSpec& act);
  // iter: output grad_x, inputs grad, saved (x, or y for SaveMode::Output).
  // blend is in [0, 1].
  void (*backward)(at::TensorIteratorBase& iter, SaveMode save, const ActivationSpec& act,
                   const DerivativeSpec& deriv, double blend);
};

extern const KernelTable kernels_DEFAULT;
extern const KernelTable kernels_AVX2;
extern const KernelTable kernels_AVX512;

}  // namespace cpu
}  // namespace artderiv
