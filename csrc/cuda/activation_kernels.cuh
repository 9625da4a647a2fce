// The CUDA forward and backward: kernels, launch sizing and dtype/formula
// dispatch, written once against a small `Device` interface so that two
// programs compile this file:
//   activation_cuda.cu            the CUDA runtime (nvcc; the library's CUDA key)
//   tests/cuda_emulation/         a host emulator that runs every thread of a
//                                 launch in turn on the CPU, so the indexing,
//                                 vectorisation and argument passing below are
//                                 tested on machines without a GPU.
// Device supplies:
//   Device::Guard guard(t);                  t's device is current for the launch
//   Device::sm_count(t)                      multiprocessors of t's device
//   Device::holds(t)                         t lives on the device (a blend tensor)
//   Device::launch(kernel, blocks, args...)  kThreads-thread blocks on the current
//                                            stream, launch checked
//
// The kernels compute the formulas of formulas.h on scalars in the compute
// type (float for half/bfloat16), over the tensors' memory as flat arrays.
// Outputs are allocated like empty_like(x), which is always dense, so an input
// with other strides is first copied into the output's layout.
//
// Memory-bound elementwise kernels: 16-byte vector loads/stores when every
// pointer is aligned (a scalar loop otherwise), kUnroll independent vectors
// per thread in flight, a grid-stride loop sized to the GPU, 64-bit indexing,
// no atomics, no host synchronisation (parameters by value; a device blend
// tensor is read by the kernel).
#pragma once

#include <algorithm>
#include <cstdint>

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_strided.h>

#include "../catalog.h"

namespace artderiv {
namespace cuda {

constexpr int kThreads = 256;
// Independent 16-byte vectors in flight per thread: enough with 2048 threads
// per SM to cover HBM latency, while keeping each kernel's code (and ptxas
// time: one kernel per formula and dtype) small.
constexpr int kUnroll = 2;
constexpr int kVectorBytes = 16;

template <class T, int N>
struct alignas(sizeof(T) * N) Vector {
  T val[N];
};

// Everything the backward needs besides the tensors, passed by value.
template <class opmath_t>
struct BackwardArgs {
  Act act;                          // the layer's activation (for blending)
  Params<opmath_t> act_params;
  Act exact_of;                     // whose f' the shape reads (act, or g of like:<g>)
  Params<opmath_t> exact_of_params;
  opmath_t exact_of_center;         // exact_of's f' is read at x - exact_of_center
  bool like;                        // like:<g>: the shape's f' is not the layer's own,
                                    // even where g is the layer's activation
  Params<opmath_t> deriv_params;
  bool blending;
  bool product;                     // unblended, grad * d without the gate (product_backward)
  bool from_output;                 // x is the saved output y: f' from derivative_from_output
  opmath_t center;                  // the shape sees x - center
  const opmath_t* blend_ptr;        // device blend (in opmath_t), or nullptr
  opmath_t blend_value;             // host blend when blend_ptr is null
};

template <class opmath_t>
Params<opmath_t> cast_params(const Params<double>& p) {
  Params<opmath_t> out{};
  for (int i = 0; i < p.count; ++i) out.v[i] = static_cast<opmath_t>(p.v[i]);
  out.count = p.count;
  return out;
}

// f'(x) of any activation: one out-of-line function per compute type, called
// by every backward kernel, instead of a copy of all activations inlined into
// each (derivative x dtype) kernel: that kept the build time linear in
// activations + derivatives. The switch is uniform across a warp.
template <class opmath_t>
__device__ __noinline__ opmath_t exact_derivative(Act act, opmath_t x, const Params<opmath_t>* p) {
  return visit_activation(act, [&](auto a) { return decltype(a)::derivative(x, *p); });
}

// f'(x) from y = f(x) for save="output" (only activations that have it are
// ever asked: resolve_save checks).
template <class opmath_t>
__device__ __noinline__ opmath_t output_exact_derivative(Act act, opmath_t y,
                                                         const Params<opmath_t>* p) {
  return visit_activation(act, [&](auto a) -> opmath_t {
    using A = decltype(a);
    if constexpr (A::has_output_derivative) return A::derivative_from_output(y, *p);
    return opmath_t(0);
  });
}

// Where BackwardOp reads f' from: the activation chosen at run time, through
// the out-of-line functions above. (benchmarks/cuda_launch_sweep.cu measures
// a policy with the activation fixed at compile time and f' inlined.)
struct RuntimeExactSource {
  template <class T>
  __device__ __forceinline__ static T of_input(Act act, T x, const Params<T>* p) {
    return exact_derivative(act, x, p);
  }
  template <class T>
  __device__ __forceinline__ static T of_output(Act act, T y, const Params<T>* p) {
    return output_exact_derivative(act, y, p);
  }
};

template <class A, class scalar_t>
struct ForwardOp {
  using opmath_t = at::opmath_type<scalar_t>;
  Params<opmath_t> p;
  __device__ __forceinline__ scalar_t operator()(scalar_t x) const {
    return static_cast<scalar_t>(A::forward(static_cast<opmath_t>(x), p));
  }
};

// kMayBlend = false compiles the blending path out (benchmarks/cuda_launch_sweep.cu
// measures what its register cost does to the launch; the library keeps one
// kernel per derivative and dtype, so always true, and RuntimeExactSource).
template <class D, class scalar_t, bool kMayBlend = true, class ExactSource = RuntimeExactSource>
struct BackwardOp {
  using opmath_t = at::opmath_type<scalar_t>;
  BackwardArgs<opmath_t> a;
  __device__ __forceinline__ scalar_t operator()(scalar_t grad, scalar_t x_in, opmath_t blend) const {
    // x_in is x, or y when from_output (then exact_of == act and D reads no x).
    const opmath_t x = static_cast<opmath_t>(x_in);
    const opmath_t shape_exact =
        !D::uses_exact ? opmath_t(0)
        : a.from_output
            ? ExactSource::of_output(a.act, x, &a.act_params)
            : ExactSource::of_input(a.exact_of, x - a.exact_of_center, &a.exact_of_params);
    opmath_t d = D::eval(x - a.center, shape_exact, a.deriv_params);
    // A blend of 0 is no blend, as on the CPU: f' may be NaN where d is not.
    const bool blended = kMayBlend && a.blending && blend != opmath_t(0);
    if (blended) {
      const opmath_t own_exact = (D::uses_exact && !a.like) ? shape_exact
                                 : a.from_output ? ExactSource::of_output(a.act, x, &a.act_params)
                                                 : ExactSource::of_input(a.act, x, &a.act_params);
      d = (opmath_t(1) - blend) * d + blend * own_exact;
    }
    const opmath_t g = static_cast<opmath_t>(grad);
    return static_cast<scalar_t>(a.product && !blended ? g * d : math::gate(g, d));
  }
};

// The kernels take their functor (the formulas' parameters) as a
// __grid_constant__ argument: the backward hands pointers into it to the
// out-of-line f' functions, and a plain kernel argument whose address is taken
// is first copied to every thread's local memory (ptxas: a 432-byte stack
// frame per float backward kernel, 864 for double; tests/test_cuda_codegen.py).

// The library launches kThreads-thread blocks of kUnroll vectors a thread in a
// grid-stride loop. Other shapes (Threads, Vectors, and GridStride = false: one
// pass, so one block for each Threads * Vectors vectors) are measured by
// benchmarks/cuda_launch_sweep.cu on the same kernels.

// y[i] = op(x[i]) for i < n.
template <class scalar_t, class Op, int Threads = kThreads, int Vectors = kUnroll, bool GridStride = true>
__global__ void __launch_bounds__(Threads)
    unary_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ y, int64_t n, bool vectorized,
                 const __grid_constant__ Op op) {
  constexpr int kVec = kVectorBytes / sizeof(scalar_t);
  using V = Vector<scalar_t, kVec>;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * Threads + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * Threads;
  int64_t done = 0;
  if (vectorized) {
    const int64_t nvec = n / kVec;
    const V* xv = reinterpret_cast<const V*>(x);
    V* yv = reinterpret_cast<V*>(y);
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * Threads * Vectors; base < nvec;
         base += stride * Vectors) {
      V in[Vectors];
#pragma unroll
      for (int u = 0; u < Vectors; ++u) {
        const int64_t i = base + u * Threads + threadIdx.x;
        if (i < nvec) in[u] = xv[i];
      }
#pragma unroll
      for (int u = 0; u < Vectors; ++u) {
        const int64_t i = base + u * Threads + threadIdx.x;
        if (i < nvec) {
          V out;
#pragma unroll
          for (int k = 0; k < kVec; ++k) out.val[k] = op(in[u].val[k]);
          yv[i] = out;
        }
      }
      if constexpr (!GridStride) break;
    }
    done = nvec * kVec;
  }
  for (int64_t i = done + tid; i < n; i += stride) y[i] = op(x[i]);
}

// grad_x[i] = op(grad[i * grad_step], x[i], blend) for i < n; grad_step is 0
// for a broadcast scalar gradient (y.sum().backward()), else 1.
template <class scalar_t, class Op, int Threads = kThreads, int Vectors = kUnroll, bool GridStride = true>
__global__ void __launch_bounds__(Threads)
    backward_kernel(const scalar_t* __restrict__ grad, int64_t grad_step,
                    const scalar_t* __restrict__ x, scalar_t* __restrict__ grad_x, int64_t n,
                    bool vectorized, const __grid_constant__ Op op) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int kVec = kVectorBytes / sizeof(scalar_t);
  using V = Vector<scalar_t, kVec>;
  const opmath_t blend =
      op.a.blend_ptr ? *op.a.blend_ptr : op.a.blend_value;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * Threads + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * Threads;
  int64_t done = 0;
  if (vectorized) {
    const int64_t nvec = n / kVec;
    const V* xv = reinterpret_cast<const V*>(x);
    const V* gv = reinterpret_cast<const V*>(grad);
    V* outv = reinterpret_cast<V*>(grad_x);
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * Threads * Vectors; base < nvec;
         base += stride * Vectors) {
      V xin[Vectors], gin[Vectors];
#pragma unroll
      for (int u = 0; u < Vectors; ++u) {
        const int64_t i = base + u * Threads + threadIdx.x;
        if (i < nvec) {
          xin[u] = xv[i];
          if (grad_step != 0) gin[u] = gv[i];
        }
      }
#pragma unroll
      for (int u = 0; u < Vectors; ++u) {
        const int64_t i = base + u * Threads + threadIdx.x;
        if (i < nvec) {
          V out;
#pragma unroll
          for (int k = 0; k < kVec; ++k) {
            out.val[k] = op(grad_step != 0 ? gin[u].val[k] : grad[0], xin[u].val[k], blend);
          }
          outv[i] = out;
        }
      }
      if constexpr (!GridStride) break;
    }
    done = nvec * kVec;
  }
  for (int64_t i = done + tid; i < n; i += stride) grad_x[i] = op(grad[i * grad_step], x[i], blend);
}

inline bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kVectorBytes == 0; }

inline int blocks_for(int64_t n, int elements_per_vector, int sm_count) {
  const int64_t per_block = static_cast<int64_t>(kThreads) * kUnroll * elements_per_vector;
  const int64_t wanted = (n + per_block - 1) / per_block;
  // Enough resident blocks to keep every SM's memory pipeline full; the
  // grid-stride loop covers the rest.
  const int64_t cap = static_cast<int64_t>(sm_count) * (2048 / kThreads) * 4;
  return static_cast<int>(std::max<int64_t>(1, std::min(wanted, cap)));
}

// `t` laid out with `like`'s strides (a no-op when they already match).
inline at::Tensor in_layout_of(const at::Tensor& t, const at::Tensor& like) {
  if (t.strides() == like.strides()) return t;
  return at::empty_strided(like.sizes(), like.strides(), t.options()).copy_(t);
}

template <class Device>
void activation_forward(at::Tensor& y, const at::Tensor& x_any, const ActivationSpec& act) {
  const int64_t n = y.numel();
  if (n == 0) return;
  const typename Device::Guard guard(y);
  const at::Tensor x = in_layout_of(x_any, y);
  const int sms = Device::sm_count(y);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, y.scalar_type(), "artderiv_forward_cuda", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    const bool vectorized = aligned(xp) && aligned(yp);
    const int blocks = blocks_for(n, kVectorBytes / sizeof(scalar_t), sms);
    visit_activation(act.act, [&](auto a) {
      using Op = ForwardOp<decltype(a), scalar_t>;
      Device::launch(&unary_kernel<scalar_t, Op>, blocks, xp, yp, n, vectorized,
                     Op{cast_params<opmath_t>(act.params)});
    });
  });
}

// `saved` is x, or y when save == SaveMode::Output.
template <class Device>
void activation_backward(at::Tensor& grad_x, const at::Tensor& grad_any, const at::Tensor& saved_any,
                         SaveMode save, const ActivationSpec& act, const DerivativeSpec& deriv,
                         const std::optional<at::Tensor>& blend) {
  const int64_t n = grad_x.numel();
  if (n == 0) return;
  const typename Device::Guard guard(grad_x);
  const at::Tensor saved = in_layout_of(saved_any, grad_x);
  // A gradient broadcast from one value (all strides 0) is read as a scalar.
  bool broadcast_grad = true;
  for (int64_t s : grad_any.strides()) broadcast_grad = broadcast_grad && s == 0;
  const at::Tensor grad = broadcast_grad ? grad_any : in_layout_of(grad_any, grad_x);
  // A device blend is read by the kernel (no sync); a CPU one travels by value.
  // It is converted to the compute type as the CPU kernels' read does (float64
  // stays float64).
  const bool device_blend = blend.has_value() && blend->defined() && Device::holds(*blend);
  const double blend_value = device_blend ? 0.0 : read_cpu_blend(act, blend);
  const bool blending = device_blend || blend_value != 0.0;
  const int sms = Device::sm_count(grad_x);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_x.scalar_type(), "artderiv_backward_cuda", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const at::Tensor blend_device =
        device_blend ? blend->to(c10::CppTypeToScalarType<opmath_t>::value) : at::Tensor();
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    const scalar_t* sp = saved.const_data_ptr<scalar_t>();
    scalar_t* outp = grad_x.mutable_data_ptr<scalar_t>();
    const bool vectorized = aligned(sp) && aligned(outp) && (broadcast_grad || aligned(gp));
    const int blocks = blocks_for(n, kVectorBytes / sizeof(scalar_t), sms);
    BackwardArgs<opmath_t> args{};
    args.act = act.act;
    args.act_params = cast_params<opmath_t>(act.params);
    args.exact_of = deriv.exact_of;
    args.exact_of_params = cast_params<opmath_t>(deriv.exact_of_params);
    args.exact_of_center = static_cast<opmath_t>(deriv.exact_of_center);
    args.like = deriv.like;
    args.deriv_params = cast_params<opmath_t>(deriv.params);
    args.blending = blending;
    args.product = product_backward(act, deriv);
    args.from_output = save == SaveMode::Output;
    args.center = static_cast<opmath_t>(act.center);
    args.blend_ptr = device_blend ? blend_device.const_data_ptr<opmath_t>() : nullptr;
    args.blend_value = static_cast<opmath_t>(blend_value);
    visit_derivative(deriv.deriv, [&](auto d) {
      using Op = BackwardOp<decltype(d), scalar_t>;
      Device::launch(&backward_kernel<scalar_t, Op>, blocks, gp, int64_t{broadcast_grad ? 0 : 1}, sp,
                     outp, n, vectorized, Op{args});
    });
  });
}

}  // namespace cuda
}  // namespace artderiv
