// CPU forward and backward kernels, compiled once per instruction set by the
// activation_kernels_<isa>.cpp files, which define CPU_CAPABILITY (ATen's
// macro: it selects the width of at::vec::Vectorized) before including this.
//
// Layout of the work:
//   TensorIterator (strides, memory formats, stride-0 grads, parallel_for)
//     -> for_each_block: blocks of kBlock values in the compute type
//        (float for half/bfloat16, rounded once on the way out)
//       -> *_block<Formula>: the formulas of formulas.h on Vectorized<T>,
//          the tail done by the same vector code on a partial load, so the
//          result never depends on alignment, block boundaries or threads.
//
// Forward blocks are instantiated per activation, backward blocks per
// derivative shape; the backward gets f'(x) from the activation's exact block
// only when the shape or a blend needs it. So adding a formula adds one
// instantiation, not one per (activation, derivative) pair.
#pragma once

#ifndef CPU_CAPABILITY
#error "define CPU_CAPABILITY (DEFAULT, AVX2 or AVX512) before including activation_kernels.h"
#endif

#include <algorithm>
#include <type_traits>

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include "vec_math.h"
// vec_math.h before formulas.h: see scalar_math.h.
#include "../formulas.h"
#include "kernel_table.h"

namespace artderiv {
namespace cpu {
namespace CPU_CAPABILITY {

using at::vec::Vectorized;

// Values per block: a few KiB of compute-type buffers, which stay in L1.
constexpr int64_t kBlock = 512;

template <class T>
Params<Vectorized<T>> broadcast(const Params<double>& p) {
  Params<Vectorized<T>> out;
  for (int i = 0; i < p.count; ++i) out.v[i] = Vectorized<T>(static_cast<T>(p.v[i]));
  out.count = p.count;
  return out;
}

// Applies body(i, len) to full vectors, then to the tail as one partial vector.
template <class T, class Body>
inline void for_each_vector(int64_t n, const Body& body) {
  constexpr int64_t width = Vectorized<T>::size();
  int64_t i = 0;
  for (; i + width <= n; i += width) body(i, width);
  if (i < n) body(i, n - i);
}

// ---- blocks: contiguous arrays of compute-type values --------------------

template <class T>
using UnaryBlockFn = void (*)(const T* x, T* out, int64_t n, const Params<double>& p);
template <class T>
using BackwardBlockFn = void (*)(const T* grad, const T* x, const T* shape_exact,
                                 const T* blend_exact, T* grad_x, int64_t n,
                                 const Params<double>& p, T blend, T center);

template <class A, class T>
void forward_block(const T* x, T* y, int64_t n, const Params<double>& params) {
  using V = Vectorized<T>;
  const auto p = broadcast<T>(params);
  for_each_vector<T>(n, [&](int64_t i, int64_t len) {
    A::forward(V::loadu(x + i, len), p).store(y + i, len);
  });
}

template <class A, class T>
void exact_block(const T* x, T* exact, int64_t n, const Params<double>& params) {
  using V = Vectorized<T>;
  const auto p = broadcast<T>(params);
  for_each_vector<T>(n, [&](int64_t i, int64_t len) {
    A::derivative(V::loadu(x + i, len), p).store(exact + i, len);
  });
}

// grad_x = grad * d, d = shape(x - center, f'(x)), or when blending
// (1 - blend) * shape + blend * f'(x). shape_exact and blend_exact are the
// same buffer unless the shape reads another activation's f' (like:<g>).
template <class D, bool kBlend, class T>
void backward_block(const T* grad, const T* x, const T* shape_exact, const T* blend_exact,
                    T* grad_x, int64_t n, const Params<double>& params, T blend, T center) {
  using V = Vectorized<T>;
  const auto p = broadcast<T>(params);
  const V b(blend), keep(T(1) - blend), c(center);
  for_each_vector<T>(n, [&](int64_t i, int64_t len) {
    const V e = D::uses_exact ? V::loadu(shape_exact + i, len) : V(T(0));
    V d = D::eval(V::loadu(x + i, len) - c, e, p);
    if constexpr (kBlend) d = keep * d + b * V::loadu(blend_exact + i, len);
    math::gate(V::loadu(grad + i, len), d).store(grad_x + i, len);
  });
}

// f'(x) from the saved output y (save="output"), for the activations that have it.
template <class A, class T>
void output_exact_block(const T* y, T* exact, int64_t n, const Params<double>& params) {
  using V = Vectorized<T>;
  const auto p = broadcast<T>(params);
  for_each_vector<T>(n, [&](int64_t i, int64_t len) {
    A::derivative_from_output(V::loadu(y + i, len), p).store(exact + i, len);
  });
}

template <class T>
UnaryBlockFn<T> forward_block_for(Act act) {
  return visit_activation(act, [](auto a) -> UnaryBlockFn<T> {
    return &forward_block<decltype(a), T>;
  });
}

template <class T>
UnaryBlockFn<T> exact_block_for(Act act) {
  return visit_activation(act, [](auto a) -> UnaryBlockFn<T> {
    return &exact_block<decltype(a), T>;
  });
}

template <class T>
UnaryBlockFn<T> output_exact_block_for(Act act) {
  return visit_activation(act, [](auto a) -> UnaryBlockFn<T> {
    using A = decltype(a);
    if constexpr (A::has_output_derivative) return &output_exact_block<A, T>;
    return nullptr;  // never called: resolve_save allows "output" only where it exists
  });
}

template <class T>
BackwardBlockFn<T> backward_block_for(Deriv deriv, bool blend) {
  return visit_derivative(deriv, [blend](auto d) -> BackwardBlockFn<T> {
    return blend ? &backward_block<decltype(d), true, T> : &backward_block<decltype(d), false, T>;
  });
}

// ---- strided tensors of any floating dtype -> blocks ---------------------

template <class scalar_t, class opmath_t>
inline void load_block(const char* src, int64_t stride, opmath_t* dst, int64_t n) {
  constexpr bool kHalfType = std::is_same_v<scalar_t, at::BFloat16> || std::is_same_v<scalar_t, at::Half>;
  if constexpr (kHalfType) {
    // ATen has no vectorised half -> float at::vec::convert: widen in registers.
    // (Widening is exact, so the scalar tail gives the same values.)
    if (stride == static_cast<int64_t>(sizeof(scalar_t))) {
      using VH = Vectorized<scalar_t>;
      const scalar_t* in = reinterpret_cast<const scalar_t*>(src);
      int64_t j = 0;
      for (; j + VH::size() <= n; j += VH::size()) {
        auto [lo, hi] = at::vec::convert_to_float<scalar_t>(VH::loadu(in + j));
        lo.store(dst + j);
        hi.store(dst + j + Vectorized<float>::size());
      }
      for (; j < n; ++j) dst[j] = static_cast<opmath_t>(in[j]);
      return;
    }
  }
  if (stride == static_cast<int64_t>(sizeof(scalar_t))) {
    at::vec::convert(reinterpret_cast<const scalar_t*>(src), dst, n);
  } else {
    for (int64_t j = 0; j < n; ++j) {
      dst[j] = static_cast<opmath_t>(*reinterpret_cast<const scalar_t*>(src + j * stride));
    }
  }
}

template <class scalar_t, class opmath_t>
inline void store_block(const opmath_t* src, char* dst, int64_t stride, int64_t n) {
  if (stride == static_cast<int64_t>(sizeof(scalar_t))) {
    at::vec::convert(src, reinterpret_cast<scalar_t*>(dst), n);
  } else {
    for (int64_t j = 0; j < n; ++j) {
      *reinterpret_cast<scalar_t*>(dst + j * stride) = static_cast<scalar_t>(src[j]);
    }
  }
}

// One TensorIterator inner loop: data[0] is the output, data[1..kInputs] the
// inputs. compute(inputs, output, len) works on compute-type blocks; in the
// common case (float/double, all contiguous) those point into the tensors.
template <class scalar_t, int kInputs, class Compute>
void for_each_block(char** data, const int64_t* strides, int64_t n, const Compute& compute) {
  using opmath_t = at::opmath_type<scalar_t>;
  bool direct = std::is_same_v<scalar_t, opmath_t>;
  for (int k = 0; k <= kInputs; ++k) {
    direct = direct && strides[k] == static_cast<int64_t>(sizeof(scalar_t));
  }
  const opmath_t* in[kInputs];
  if (direct) {
    for (int64_t i = 0; i < n; i += kBlock) {
      for (int k = 0; k < kInputs; ++k) in[k] = reinterpret_cast<const opmath_t*>(data[k + 1]) + i;
      compute(in, reinterpret_cast<opmath_t*>(data[0]) + i, std::min(kBlock, n - i));
    }
    return;
  }
  opmath_t in_buf[kInputs][kBlock];
  opmath_t out_buf[kBlock];
  for (int k = 0; k < kInputs; ++k) in[k] = in_buf[k];
  for (int64_t i = 0; i < n; i += kBlock) {
    const int64_t len = std::min(kBlock, n - i);
    for (int k = 0; k < kInputs; ++k) {
      load_block<scalar_t>(data[k + 1] + i * strides[k + 1], strides[k + 1], in_buf[k], len);
    }
    compute(in, out_buf, len);
    store_block<scalar_t>(out_buf, data[0] + i * strides[0], strides[0], len);
  }
}

// ---- the kernel table entries --------------------------------------------

inline void forward(at::TensorIteratorBase& iter, const ActivationSpec& act) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.dtype(), "artderiv_forward", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const UnaryBlockFn<opmath_t> block = forward_block_for<opmath_t>(act.act);
    const Params<double> p = act.params;
    iter.for_each([&](char** data, const int64_t* strides, int64_t n) {
      for_each_block<scalar_t, 1>(data, strides, n,
                                  [&](const opmath_t* const* in, opmath_t* out, int64_t len) {
                                    block(in[0], out, len, p);
                                  });
    });
  });
}

inline void backward(at::TensorIteratorBase& iter, SaveMode save, const ActivationSpec& act,
                     const DerivativeSpec& deriv, double blend) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.dtype(), "artderiv_backward", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const bool blending = blend != 0.0;
    // f'(x) for the shape (the layer's activation, or another for like:<g>),
    // and the layer's own f'(x) for blending: one buffer unless like:<g>.
    // With save="output" the saved tensor is y and both come from y (the
    // shape then reads no x, and like:<g> is not allowed).
    const bool from_output = save == SaveMode::Output;
    const UnaryBlockFn<opmath_t> shape_exact = from_output
                                                   ? output_exact_block_for<opmath_t>(act.act)
                                                   : exact_block_for<opmath_t>(deriv.exact_of);
    const UnaryBlockFn<opmath_t> own_exact = from_output ? output_exact_block_for<opmath_t>(act.act)
                                                         : exact_block_for<opmath_t>(act.act);
    const bool separate_blend_exact = blending && deriv.like;
    const BackwardBlockFn<opmath_t> block = backward_block_for<opmath_t>(deriv.deriv, blending);
    const Params<double> dp = deriv.params;
    const opmath_t b = static_cast<opmath_t>(blend);
    const opmath_t center = static_cast<opmath_t>(act.center);
    const opmath_t exact_of_center = static_cast<opmath_t>(deriv.exact_of_center);
    iter.for_each([&](char** data, const int64_t* strides, int64_t n) {
      for_each_block<scalar_t, 2>(data, strides, n, [&](const opmath_t* const* in, opmath_t* out,
                                                        int64_t len) {
        opmath_t exact_buf[kBlock];
        opmath_t own_buf[kBlock];
        if (deriv.uses_exact) {
          const opmath_t* at = in[1];
          opmath_t shifted[kBlock];
          if (exact_of_center != opmath_t(0)) {  // like:<g> on step: g'(x - threshold)
            for (int64_t j = 0; j < len; ++j) shifted[j] = in[1][j] - exact_of_center;
            at = shifted;
          }
          shape_exact(at, exact_buf, len, deriv.exact_of_params);
        } else if (blending) {
          own_exact(in[1], exact_buf, len, act.params);
        }
        if (separate_blend_exact) own_exact(in[1], own_buf, len, act.params);
        block(in[0], in[1], exact_buf, separate_blend_exact ? own_buf : exact_buf, out, len, dp, b,
              center);
      });
    });
  });
}

inline KernelTable make_kernel_table() {
  return {C10_STRINGIZE(CPU_CAPABILITY), &forward, &backward};
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace artderiv
