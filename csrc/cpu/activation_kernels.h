// CPU forward and backward kernels, compiled once per instruction set by the
// activation_kernels_<isa>.cpp files, which define CPU_CAPABILITY (ATen's
// macro: it selects the width of at::vec::Vectorized) before including this.
//
// Layout of the work:
//   for_each_chunk: TensorIterator (strides, memory formats, stride-0 grads,
//                   parallel_for), or one thread's chunk of dense flat arrays
//     -> for_each_block: blocks of kBlock values in the compute type
//        (float for half/bfloat16, rounded once on the way out)
//       -> *_block<Formula>: the formulas of formulas.h on Pack<T>, kLanes
//          Vectorized<T> at once (lanes.h), the tail done by the same code
//          on a partial load, so the result never depends on alignment,
//          block boundaries or threads.
//
// Forward blocks are instantiated per activation, backward blocks per
// derivative shape; the backward gets f'(x) from the activation's exact block
// only when the shape or a blend needs it. So adding a formula adds one
// instantiation, not one per (activation, derivative) pair.
#pragma once

#ifndef CPU_CAPABILITY
#error "define CPU_CAPABILITY (DEFAULT, AVX2, AVX512 or AVX512BF16) before including activation_kernels.h"
#endif

#include <algorithm>
#include <new>
#include <tuple>
#include <type_traits>

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include "vec_math.h"
#include "lanes.h"
// vec_math.h and lanes.h before formulas.h: see scalar_math.h.
#include "../formulas.h"
#include "half_io.h"
#include "kernel_table.h"

namespace artderiv {

// A kernel's parameters as packs (made once per call): 32 slots, of which a
// formula uses a few. In a union, so that they are not zeroed on construction
// as Vectorized values are (4 KiB of stores per call on AVX2, 8 on AVX512);
// set() starts the lifetime of the slots in use. Lanes itself is no union:
// GCC then keeps the lanes of a loop's values in memory.
template <class V, int N>
struct Params<math::Lanes<V, N>> {
  union {
    math::Lanes<V, N> v[kMaxParams];
  };
  int count;
  Params() {}
  void set(int i, const math::Lanes<V, N>& value) { ::new (&v[i]) math::Lanes<V, N>(value); }
  const math::Lanes<V, N>& operator[](int i) const { return v[i]; }
};

namespace cpu {
namespace CPU_CAPABILITY {

using at::vec::Vectorized;

// Values per block: a few KiB of compute-type buffers, which stay in L1.
constexpr int64_t kBlock = 512;

template <class scalar_t>
constexpr bool kHalfType =
    std::is_same_v<scalar_t, at::BFloat16> || std::is_same_v<scalar_t, at::Half>;

// The value type of the kernels: kLanes vectors, every operation applied to
// each in turn (lanes.h: the CPU overlaps their latency chains). Four on AVX2
// and AVX512, where 4 float vectors of an exp-based formula still fit the
// registers; two (a bfloat16/float16 vector's two float halves) in the
// DEFAULT build, which runs where the CPU has neither.
#ifdef CPU_CAPABILITY_DEFAULT
constexpr int kLanes = 2;
#else
constexpr int kLanes = 4;
#endif
template <class T>
using Pack = math::Lanes<Vectorized<T>, kLanes>;

// Parameters as packs, made once per kernel call (not per block), only the
// ones in use.
template <class T>
using VecParams = Params<Pack<T>>;

template <class T>
VecParams<T> broadcast(const Params<double>& p) {
  VecParams<T> out;
  for (int i = 0; i < p.count; ++i) out.set(i, Pack<T>(static_cast<T>(p.v[i])));
  out.count = p.count;
  return out;
}

// The per-pack bodies below are lambdas marked with this: GCC's inlining
// of them (and of HalfIO's helpers) into the loop otherwise changes with
// unrelated edits, and an out-of-line body costs a call per pack.
#if defined(__GNUC__)
#define ARTDERIV_INLINE_BODY __attribute__((always_inline))
#else
#define ARTDERIV_INLINE_BODY
#endif

// Applies body(i, len) to full packs of kWidth values, then to the tail as
// one partial pack.
template <int64_t kWidth, class Body>
C10_ALWAYS_INLINE void for_each_pack(int64_t n, const Body& body) {
  int64_t i = 0;
  for (; i + kWidth <= n; i += kWidth) body(i, kWidth);
  if (i < n) body(i, n - i);
}

// ---- blocks: contiguous arrays of compute-type values --------------------

template <class T>
using UnaryBlockFn = void (*)(const T* x, T* out, int64_t n, const VecParams<T>& p);
// f'(x - center) of x, or with kFromOutput f' from the saved y (center unused).
template <class T>
using ExactBlockFn = void (*)(const T* x, T* exact, int64_t n, const VecParams<T>& p, T center);
template <class T>
using BackwardBlockFn = void (*)(const T* grad, const T* x, const T* shape_exact,
                                 const T* blend_exact, T* grad_x, int64_t n,
                                 const VecParams<T>& p, T blend, T center);

template <class A, class T>
void forward_block(const T* x, T* y, int64_t n, const VecParams<T>& p) {
  using V = Pack<T>;
  for_each_pack<V::size()>(n, [&](int64_t i, int64_t len) ARTDERIV_INLINE_BODY {
    A::forward(V::loadu(x + i, len), p).store(y + i, len);
  });
}

template <class A, bool kFromOutput, class T>
void exact_block(const T* x, T* exact, int64_t n, const VecParams<T>& p, T center) {
  using V = Pack<T>;
  const V c(center);
  for_each_pack<V::size()>(n, [&](int64_t i, int64_t len) ARTDERIV_INLINE_BODY {
    const V v = V::loadu(x + i, len);
    if constexpr (kFromOutput) {
      A::derivative_from_output(v, p).store(exact + i, len);
    } else {
      A::derivative(v - c, p).store(exact + i, len);
    }
  });
}

// grad * d, gated (where d is 0, +0 for any grad) unless kGate is false
// (product_backward in catalog.h: the exact derivative of sigmoid, tanh, ...).
template <bool kGate, class V>
C10_ALWAYS_INLINE V apply_factor(const V& grad, const V& d) {
  if constexpr (kGate) {
    return math::gate(grad, d);
  } else {
    return grad * d;
  }
}

// grad_x = grad * d, d = shape(x - center, f'(x)), or when blending
// (1 - blend) * shape + blend * f'(x). shape_exact and blend_exact are the
// same buffer unless the shape reads another activation's f' (like:<g>).
template <class D, bool kBlend, bool kGate, class T>
void backward_block(const T* grad, const T* x, const T* shape_exact, const T* blend_exact,
                    T* grad_x, int64_t n, const VecParams<T>& p, T blend, T center) {
  using V = Pack<T>;
  const V b(blend), keep(T(1) - blend), c(center);
  for_each_pack<V::size()>(n, [&](int64_t i, int64_t len) ARTDERIV_INLINE_BODY {
    const V e = D::uses_exact ? V::loadu(shape_exact + i, len) : V(T(0));
    V d = D::eval(V::loadu(x + i, len) - c, e, p);
    if constexpr (kBlend) d = keep * d + b * V::loadu(blend_exact + i, len);
    apply_factor<kGate>(V::loadu(grad + i, len), d).store(grad_x + i, len);
  });
}

template <class T>
UnaryBlockFn<T> forward_block_for(Act act) {
  return visit_activation(act, [](auto a) -> UnaryBlockFn<T> {
    return &forward_block<decltype(a), T>;
  });
}

// from_output only where the activation has it: resolve_save checks.
template <class T>
ExactBlockFn<T> exact_block_for(Act act, bool from_output) {
  return visit_activation(act, [from_output](auto a) -> ExactBlockFn<T> {
    using A = decltype(a);
    if constexpr (A::has_output_derivative) {
      if (from_output) return &exact_block<A, true, T>;
    }
    return &exact_block<A, false, T>;
  });
}

// pick(d, kBlend, kGate) (the flags as std::bool_constant) -> the block of
// shape D with them. Ungated only for the unblended exact derivative
// (`product`: product_backward in catalog.h), the one instantiation of
// kGate = false.
template <class Pick>
auto backward_block_variant(Deriv deriv, bool blend, bool product, const Pick& pick) {
  return visit_derivative(deriv, [&](auto d) {
    if constexpr (std::is_same_v<decltype(d), Exact>) {
      if (product && !blend) return pick(d, std::false_type{}, std::false_type{});
    }
    return blend ? pick(d, std::true_type{}, std::true_type{}) : pick(d, std::false_type{}, std::true_type{});
  });
}

template <class T>
BackwardBlockFn<T> backward_block_for(Deriv deriv, bool blend, bool product) {
  return backward_block_variant(deriv, blend, product, [](auto d, auto b, auto g) -> BackwardBlockFn<T> {
    return &backward_block<decltype(d), decltype(b)::value, decltype(g)::value, T>;
  });
}

// ---- save="output" without a blend: f'(y) in registers ------------------
//
// The training default for sigmoid and tanh (exact, exact_plus, floor: shapes
// that read only f'). f' comes from y in the same pass, as in torch's
// sigmoid_backward, instead of through a float buffer: one instantiation per
// (activation with derivative_from_output) x (shape without uses_input), a few
// dozen, not the whole catalog's product. The values are those of the buffered
// path (f' is a compute-type value either way; the shape ignores x).

// Not in the DEFAULT build (CPUs without AVX2), which keeps the two-pass path
// and does not even compile these blocks: there GCC 12 at -O3 gave wrong
// bfloat16/float16 values for them (test_other_cpu_kernel_builds caught it; in
// a standalone build, -fno-ipa-cp-clone, -O2 and clang 14 give the right ones,
// UBSan reports nothing).
#ifdef CPU_CAPABILITY_DEFAULT
constexpr bool kOnePassOutput = false;
#else
constexpr bool kOnePassOutput = true;
#endif

template <class T>
using OutputBackwardBlockFn = void (*)(const T* grad, const T* y, T* grad_x, int64_t n,
                                       const VecParams<T>& act_p, const VecParams<T>& p);

// The gate of a save="output" block (never blended, never like:<g>).
template <class A, class D>
constexpr bool kOutputGate = !product_backward(A::product_backward, std::is_same_v<D, Exact>, /*like=*/false);

template <class A, class D, class T>
void output_backward_block(const T* grad, const T* y, T* grad_x, int64_t n,
                           const VecParams<T>& act_p, const VecParams<T>& p) {
  using V = Pack<T>;
  const V unused_x(T(0));
  for_each_pack<V::size()>(n, [&](int64_t i, int64_t len) ARTDERIV_INLINE_BODY {
    const V d = D::eval(unused_x, A::derivative_from_output(V::loadu(y + i, len), act_p), p);
    apply_factor<kOutputGate<A, D>>(V::loadu(grad + i, len), d).store(grad_x + i, len);
  });
}

// make(a, d) -> the block for activation A and shape D, for the pairs that
// save="output" allows; nullptr for the rest (resolve_save refuses them).
template <class Fn, class Make>
Fn output_block_for(Act act, Deriv deriv, const Make& make) {
  return visit_activation(act, [&](auto a) -> Fn {
    if constexpr (decltype(a)::has_output_derivative) {
      return visit_derivative(deriv, [&](auto d) -> Fn {
        if constexpr (!decltype(d)::uses_input) {
          return make(a, d);
        } else {
          return nullptr;
        }
      });
    } else {
      return nullptr;
    }
  });
}

// ---- half-type blocks: contiguous bfloat16/float16, widened in registers --
//
// The same formulas on float packs, fed straight from the 16-bit data: one
// Vectorized<S> load gives two float vectors, one store takes two back
// (HalfIO, half_io.h; for bfloat16 in lane order, not array order).
// No buffer round trip for x, grad or the result; only f'(x), when a shape
// or a blend reads it, goes through a float block (it comes from the
// activation's own function, so formulas stay one instantiation each).
// Widening is exact and narrowing rounds once, as the buffered path does, so
// both paths give the same values (NaN payloads aside).

template <class S>
using HalfUnaryBlockFn = void (*)(const S* x, S* y, int64_t n, const VecParams<float>& p);
// f'(x - center) of 16-bit x (or f' from 16-bit y) into a float block.
template <class S>
using HalfExactBlockFn = void (*)(const S* x, float* exact, int64_t n, const VecParams<float>& p,
                                  float center);
template <class S>
using HalfBackwardBlockFn = void (*)(const S* grad, const S* x, const float* shape_exact,
                                     const float* blend_exact, S* grad_x, int64_t n,
                                     const VecParams<float>& p, float blend, float center);

template <class S>
using HalfPackIO = HalfIO<S, kLanes>;

// The f' buffers of a block are written and read as whole packs.
static_assert(kBlock % HalfPackIO<at::BFloat16>::kWidth == 0 && kBlock % HalfPackIO<at::Half>::kWidth == 0);

template <class A, class S>
void forward_half_block(const S* x, S* y, int64_t n, const VecParams<float>& p) {
  for_each_pack<HalfPackIO<S>::kWidth>(n, [&](int64_t i, int64_t len) ARTDERIV_INLINE_BODY {
    HalfPackIO<S>::store(y + i, A::forward(HalfPackIO<S>::load(x + i, len), p), len);
  });
}

template <class A, bool kFromOutput, class S>
void exact_half_block(const S* x, float* exact, int64_t n, const VecParams<float>& p,
                      float center) {
  using V = Pack<float>;
  const V c(center);
  for_each_pack<HalfPackIO<S>::kWidth>(n, [&](int64_t i, int64_t len) ARTDERIV_INLINE_BODY {
    const V v = HalfPackIO<S>::load(x + i, len);
    if constexpr (kFromOutput) {
      A::derivative_from_output(v, p).store(exact + i);
    } else {
      A::derivative(v - c, p).store(exact + i);
    }
  });
}

template <class D, bool kBlend, bool kGate, class S>
void backward_half_block(const S* grad, const S* x, const float* shape_exact,
                         const float* blend_exact, S* grad_x, int64_t n,
                         const VecParams<float>& p, float blend, float center) {
  using V = Pack<float>;
  const V b(blend), keep(1.f - blend), c(center);
  for_each_pack<HalfPackIO<S>::kWidth>(n, [&](int64_t i, int64_t len) ARTDERIV_INLINE_BODY {
    const V e = D::uses_exact ? V::loadu(shape_exact + i) : V(0.f);
    V d = D::eval(HalfPackIO<S>::load(x + i, len) - c, e, p);
    if constexpr (kBlend) d = keep * d + b * V::loadu(blend_exact + i);
    HalfPackIO<S>::store(grad_x + i, apply_factor<kGate>(HalfPackIO<S>::load(grad + i, len), d), len);
  });
}

template <class S>
using HalfOutputBackwardBlockFn = void (*)(const S* grad, const S* y, S* grad_x, int64_t n,
                                           const VecParams<float>& act_p,
                                           const VecParams<float>& p);

template <class A, class D, class S>
void output_backward_half_block(const S* grad, const S* y, S* grad_x, int64_t n,
                                const VecParams<float>& act_p, const VecParams<float>& p) {
  using V = Pack<float>;
  const V unused_x(0.f);
  for_each_pack<HalfPackIO<S>::kWidth>(n, [&](int64_t i, int64_t len) ARTDERIV_INLINE_BODY {
    const V d = D::eval(unused_x, A::derivative_from_output(HalfPackIO<S>::load(y + i, len), act_p), p);
    HalfPackIO<S>::store(grad_x + i, apply_factor<kOutputGate<A, D>>(HalfPackIO<S>::load(grad + i, len), d),
                         len);
  });
}

template <class S>
HalfUnaryBlockFn<S> forward_half_block_for(Act act) {
  return visit_activation(act, [](auto a) -> HalfUnaryBlockFn<S> {
    return &forward_half_block<decltype(a), S>;
  });
}

template <class S>
HalfExactBlockFn<S> exact_half_block_for(Act act, bool from_output) {
  return visit_activation(act, [from_output](auto a) -> HalfExactBlockFn<S> {
    using A = decltype(a);
    if constexpr (A::has_output_derivative) {
      if (from_output) return &exact_half_block<A, true, S>;
    }
    return &exact_half_block<A, false, S>;
  });
}

template <class S>
HalfBackwardBlockFn<S> backward_half_block_for(Deriv deriv, bool blend, bool product) {
  return backward_block_variant(deriv, blend, product, [](auto d, auto b, auto g) -> HalfBackwardBlockFn<S> {
    return &backward_half_block<decltype(d), decltype(b)::value, decltype(g)::value, S>;
  });
}

// ---- strided tensors of any floating dtype -> blocks ---------------------

template <class scalar_t, class opmath_t>
inline void load_block(const char* src, int64_t stride, opmath_t* dst, int64_t n) {
  if constexpr (kHalfType<scalar_t>) {
    // ATen has no vectorised half -> float at::vec::convert: widen in registers.
    // (Widening is exact, so the scalar tail gives the same values.)
    if (stride == static_cast<int64_t>(sizeof(scalar_t))) {
      using VH = Vectorized<scalar_t>;
      const scalar_t* in = reinterpret_cast<const scalar_t*>(src);
      int64_t j = 0;
      for (; j + VH::size() <= n; j += VH::size()) {
        Vectorized<float> lo, hi;  // std::tie: see HalfConvert::widen (half_io.h)
        std::tie(lo, hi) = at::vec::convert_to_float<scalar_t>(VH::loadu(in + j));
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

// One inner loop (a TensorIterator's, or one flat chunk): data[0] is the
// output, data[1..kInputs] the inputs. compute(inputs, output, len) works on
// compute-type blocks; in the common case (float/double, all contiguous)
// those point into the tensors.
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

// loop(data, strides, n) over chunks of the operands: the iterator's own
// for_each (parallel, in libtorch's thread pool), or one call on flat arrays,
// one thread's chunk (activation_cpu.cpp splits flat operands over threads).
template <int kInputs, class Loop>
void for_each_chunk(const Operands& ops, const Loop& loop) {
  if (ops.iter != nullptr) {
    ops.iter->for_each(loop);
    return;
  }
  const int64_t elem = static_cast<int64_t>(c10::elementSize(ops.dtype));
  int64_t strides[kInputs + 1];
  for (int k = 0; k <= kInputs; ++k) strides[k] = elem;
  char* data[kInputs + 1];
  std::copy(ops.data, ops.data + kInputs + 1, data);
  loop(data, strides, ops.numel);
}

// ---- the kernel table entries --------------------------------------------

template <int kOperands>
bool contiguous(const int64_t* strides, int64_t elem) {
  for (int k = 0; k < kOperands; ++k) {
    if (strides[k] != elem) return false;
  }
  return true;
}

// A template per dtype (not the dispatch lambda's body), so that `if
// constexpr` really drops the half-type code from the float/double builds.
template <class scalar_t>
void forward_typed(const Operands& ops, const ActivationSpec& act) {
  using opmath_t = at::opmath_type<scalar_t>;
  const UnaryBlockFn<opmath_t> block = forward_block_for<opmath_t>(act.act);
  const VecParams<opmath_t> p = broadcast<opmath_t>(act.params);
  const auto buffered = [&](char** data, const int64_t* strides, int64_t n) {
    for_each_block<scalar_t, 1>(data, strides, n,
                                [&](const opmath_t* const* in, opmath_t* out, int64_t len) {
                                  block(in[0], out, len, p);
                                });
  };
  if constexpr (kHalfType<scalar_t>) {
    const HalfUnaryBlockFn<scalar_t> half_block = forward_half_block_for<scalar_t>(act.act);
    for_each_chunk<1>(ops, [&](char** data, const int64_t* strides, int64_t n) {
      if (contiguous<2>(strides, sizeof(scalar_t))) {
        half_block(reinterpret_cast<const scalar_t*>(data[1]),
                   reinterpret_cast<scalar_t*>(data[0]), n, p);
      } else {
        buffered(data, strides, n);
      }
    });
  } else {
    for_each_chunk<1>(ops, buffered);
  }
}

inline void forward(const Operands& ops, const ActivationSpec& act) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, ops.dtype, "artderiv_forward",
                                  [&] { forward_typed<scalar_t>(ops, act); });
}

template <class scalar_t>
void backward_typed(const Operands& ops, SaveMode save, const ActivationSpec& act,
                    const DerivativeSpec& deriv, double blend) {
  using opmath_t = at::opmath_type<scalar_t>;
  // Blending where the blend is not 0 in the compute type (a float64 blend of
  // 1e-50 is 0 in float), as the CUDA kernels decide on the value they read.
  const opmath_t b = static_cast<opmath_t>(blend);
  const bool blending = b != opmath_t(0);
  // f'(x) for the shape (the layer's activation, or another for like:<g>,
  // read at x - center), and the layer's own f'(x) for blending: one buffer
  // unless like:<g>. With save="output" the saved tensor is y and both come
  // from y (the shape then reads no x, and like:<g> is not allowed).
  const bool from_output = save == SaveMode::Output;
  const bool separate_blend_exact = blending && deriv.like;
  const VecParams<opmath_t> dp = broadcast<opmath_t>(deriv.params);
  const VecParams<opmath_t> shape_exact_p = broadcast<opmath_t>(deriv.exact_of_params);
  const VecParams<opmath_t> own_exact_p = broadcast<opmath_t>(act.params);
  const opmath_t center = static_cast<opmath_t>(act.center);
  const opmath_t exact_of_center = static_cast<opmath_t>(deriv.exact_of_center);
  // One block of at most kBlock values, from contiguous grad and x of any
  // storage type: f' into buffers where the shape or a blend reads it, then
  // the shape (the float blocks, or the half-type blocks that widen in registers).
  const auto run_block = [&](const auto* grad, const auto* x, auto* out, int64_t len,
                             auto shape_exact, auto own_exact, auto block) {
    opmath_t exact_buf[kBlock];
    opmath_t own_buf[kBlock];
    if (deriv.uses_exact) {
      shape_exact(x, exact_buf, len, shape_exact_p, exact_of_center);
    } else if (blending) {
      own_exact(x, exact_buf, len, own_exact_p, opmath_t(0));
    }
    if (separate_blend_exact) own_exact(x, own_buf, len, own_exact_p, opmath_t(0));
    block(grad, x, exact_buf, separate_blend_exact ? own_buf : exact_buf, out, len, dp, b, center);
  };
  // Any dtype and strides: compute-type blocks (pointing into the tensors
  // for contiguous float/double).
  const ExactBlockFn<opmath_t> shape_exact = exact_block_for<opmath_t>(deriv.exact_of, from_output);
  const ExactBlockFn<opmath_t> own_exact = exact_block_for<opmath_t>(act.act, from_output);
  const bool product = product_backward(act, deriv);
  const BackwardBlockFn<opmath_t> block = backward_block_for<opmath_t>(deriv.deriv, blending, product);
  // save="output" without a blend: one pass, f'(y) in registers.
  OutputBackwardBlockFn<opmath_t> output_block = nullptr;
  if constexpr (kOnePassOutput) {
    if (from_output && !blending) {
      output_block = output_block_for<OutputBackwardBlockFn<opmath_t>>(
          act.act, deriv.deriv, [](auto a, auto d) {
            return &output_backward_block<decltype(a), decltype(d), opmath_t>;
          });
    }
  }
  const auto buffered = [&](char** data, const int64_t* strides, int64_t n) {
    for_each_block<scalar_t, 2>(data, strides, n, [&](const opmath_t* const* in, opmath_t* out,
                                                      int64_t len) {
      if (output_block != nullptr) {
        output_block(in[0], in[1], out, len, own_exact_p, dp);
      } else {
        run_block(in[0], in[1], out, len, shape_exact, own_exact, block);
      }
    });
  };
  if constexpr (kHalfType<scalar_t>) {
    const HalfExactBlockFn<scalar_t> half_shape_exact =
        exact_half_block_for<scalar_t>(deriv.exact_of, from_output);
    const HalfExactBlockFn<scalar_t> half_own_exact =
        exact_half_block_for<scalar_t>(act.act, from_output);
    const HalfBackwardBlockFn<scalar_t> half_block =
        backward_half_block_for<scalar_t>(deriv.deriv, blending, product);
    HalfOutputBackwardBlockFn<scalar_t> half_output_block = nullptr;
    if constexpr (kOnePassOutput) {
      if (output_block != nullptr) {
        half_output_block = output_block_for<HalfOutputBackwardBlockFn<scalar_t>>(
            act.act, deriv.deriv, [](auto a, auto d) {
              return &output_backward_half_block<decltype(a), decltype(d), scalar_t>;
            });
      }
    }
    for_each_chunk<2>(ops, [&](char** data, const int64_t* strides, int64_t n) {
      if (!contiguous<3>(strides, sizeof(scalar_t))) {
        buffered(data, strides, n);
        return;
      }
      const auto* grad = reinterpret_cast<const scalar_t*>(data[1]);
      const auto* x = reinterpret_cast<const scalar_t*>(data[2]);
      auto* out = reinterpret_cast<scalar_t*>(data[0]);
      if (half_output_block != nullptr) {
        half_output_block(grad, x, out, n, own_exact_p, dp);
        return;
      }
      for (int64_t i = 0; i < n; i += kBlock) {
        run_block(grad + i, x + i, out + i, std::min(kBlock, n - i), half_shape_exact,
                  half_own_exact, half_block);
      }
    });
  } else {
    for_each_chunk<2>(ops, buffered);
  }
}

inline void backward(const Operands& ops, SaveMode save, const ActivationSpec& act,
                     const DerivativeSpec& deriv, double blend) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, ops.dtype, "artderiv_backward",
                                  [&] { backward_typed<scalar_t>(ops, save, act, deriv, blend); });
}

// constexpr, and the tables are constexpr: constant-initialized, so this
// file's load-time initializer (which runs on any CPU) holds no AVX code. A
// dynamic initialization of the tables did; tests/test_library_isa.py checks.
constexpr KernelTable make_kernel_table() {
  return {C10_STRINGIZE(CPU_CAPABILITY), &forward, &backward};
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace artderiv
