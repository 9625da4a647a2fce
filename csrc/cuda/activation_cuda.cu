// CUDA forward and backward kernels: the formulas of formulas.h on scalars in
// the compute type (float for half/bfloat16), over the tensors' memory as flat
// arrays. Outputs are allocated like empty_like(x), which is always dense, so
// an input with other strides is first copied into the output's layout.
//
// Memory-bound elementwise kernels: 16-byte vector loads/stores when every
// pointer is aligned (a scalar loop otherwise), kUnroll independent vectors
// per thread in flight, a grid-stride loop sized to the GPU, 64-bit indexing,
// no atomics, no host synchronisation (parameters by value; a CUDA blend
// tensor is read on the device), on the current stream under a device guard.
#include <algorithm>

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/ops/empty_strided.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../ops.h"

namespace artderiv {
namespace cuda {
namespace {

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
  Params<opmath_t> deriv_params;
  bool shape_uses_exact;
  bool blending;
  bool from_output;                 // x is the saved output y: f' from derivative_from_output
  opmath_t center;                  // the shape sees x - center
  const float* blend_ptr;           // device blend, or nullptr
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

template <class A, class scalar_t>
struct ForwardOp {
  using opmath_t = at::opmath_type<scalar_t>;
  Params<opmath_t> p;
  __device__ __forceinline__ scalar_t operator()(scalar_t x) const {
    return static_cast<scalar_t>(A::forward(static_cast<opmath_t>(x), p));
  }
};

template <class D, class scalar_t>
struct BackwardOp {
  using opmath_t = at::opmath_type<scalar_t>;
  BackwardArgs<opmath_t> a;
  __device__ __forceinline__ scalar_t operator()(scalar_t grad, scalar_t x_in, opmath_t blend) const {
    // x_in is x, or y when from_output (then exact_of == act and D reads no x).
    const opmath_t x = static_cast<opmath_t>(x_in);
    const opmath_t shape_exact =
        !D::uses_exact ? opmath_t(0)
        : a.from_output
            ? output_exact_derivative(a.act, x, &a.act_params)
            : exact_derivative(a.exact_of, x - a.exact_of_center, &a.exact_of_params);
    opmath_t d = D::eval(x - a.center, shape_exact, a.deriv_params);
    if (a.blending) {
      const opmath_t own_exact = (D::uses_exact && a.exact_of == a.act) ? shape_exact
                                 : a.from_output ? output_exact_derivative(a.act, x, &a.act_params)
                                                 : exact_derivative(a.act, x, &a.act_params);
      d = (opmath_t(1) - blend) * d + blend * own_exact;
    }
    return static_cast<scalar_t>(math::gate(static_cast<opmath_t>(grad), d));
  }
};

// y[i] = op(x[i]) for i < n.
template <class scalar_t, class Op>
__global__ void __launch_bounds__(kThreads)
    unary_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ y, int64_t n, bool vectorized,
                 Op op) {
  constexpr int kVec = kVectorBytes / sizeof(scalar_t);
  using V = Vector<scalar_t, kVec>;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  int64_t done = 0;
  if (vectorized) {
    const int64_t nvec = n / kVec;
    const V* xv = reinterpret_cast<const V*>(x);
    V* yv = reinterpret_cast<V*>(y);
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * kThreads * kUnroll; base < nvec;
         base += stride * kUnroll) {
      V in[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t i = base + u * kThreads + threadIdx.x;
        if (i < nvec) in[u] = xv[i];
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t i = base + u * kThreads + threadIdx.x;
        if (i < nvec) {
          V out;
#pragma unroll
          for (int k = 0; k < kVec; ++k) out.val[k] = op(in[u].val[k]);
          yv[i] = out;
        }
      }
    }
    done = nvec * kVec;
  }
  for (int64_t i = done + tid; i < n; i += stride) y[i] = op(x[i]);
}

// grad_x[i] = op(grad[i * grad_step], x[i], blend) for i < n; grad_step is 0
// for a broadcast scalar gradient (y.sum().backward()), else 1.
template <class scalar_t, class Op>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const scalar_t* __restrict__ grad, int64_t grad_step,
                    const scalar_t* __restrict__ x, scalar_t* __restrict__ grad_x, int64_t n,
                    bool vectorized, Op op) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int kVec = kVectorBytes / sizeof(scalar_t);
  using V = Vector<scalar_t, kVec>;
  const opmath_t blend =
      op.a.blend_ptr ? static_cast<opmath_t>(*op.a.blend_ptr) : op.a.blend_value;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  int64_t done = 0;
  if (vectorized) {
    const int64_t nvec = n / kVec;
    const V* xv = reinterpret_cast<const V*>(x);
    const V* gv = reinterpret_cast<const V*>(grad);
    V* outv = reinterpret_cast<V*>(grad_x);
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * kThreads * kUnroll; base < nvec;
         base += stride * kUnroll) {
      V xin[kUnroll], gin[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t i = base + u * kThreads + threadIdx.x;
        if (i < nvec) {
          xin[u] = xv[i];
          if (grad_step != 0) gin[u] = gv[i];
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t i = base + u * kThreads + threadIdx.x;
        if (i < nvec) {
          V out;
#pragma unroll
          for (int k = 0; k < kVec; ++k) {
            out.val[k] = op(grad_step != 0 ? gin[u].val[k] : grad[0], xin[u].val[k], blend);
          }
          outv[i] = out;
        }
      }
    }
    done = nvec * kVec;
  }
  for (int64_t i = done + tid; i < n; i += stride) grad_x[i] = op(grad[i * grad_step], x[i], blend);
}

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kVectorBytes == 0; }

int blocks_for(int64_t n, int elements_per_vector, int device) {
  static int sm_count[64] = {0};
  int& sms = sm_count[device % 64];
  if (sms == 0) {
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  }
  const int64_t per_block = static_cast<int64_t>(kThreads) * kUnroll * elements_per_vector;
  const int64_t wanted = (n + per_block - 1) / per_block;
  // Enough resident blocks to keep every SM's memory pipeline full; the
  // grid-stride loop covers the rest.
  const int64_t cap = static_cast<int64_t>(sms) * (2048 / kThreads) * 4;
  return static_cast<int>(std::max<int64_t>(1, std::min(wanted, cap)));
}

// `t` laid out with `like`'s strides (a no-op when they already match).
at::Tensor in_layout_of(const at::Tensor& t, const at::Tensor& like) {
  if (t.strides() == like.strides()) return t;
  return at::empty_strided(like.sizes(), like.strides(), t.options()).copy_(t);
}

}  // namespace
}  // namespace cuda

void activation_forward_cuda(at::Tensor& y, const at::Tensor& x_any, const ActivationSpec& act) {
  using namespace cuda;
  const int64_t n = y.numel();
  if (n == 0) return;
  const c10::cuda::CUDAGuard guard(y.device());
  const at::Tensor x = in_layout_of(x_any, y);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, y.scalar_type(), "artderiv_forward_cuda", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    const bool vectorized = aligned(xp) && aligned(yp);
    const int blocks = blocks_for(n, kVectorBytes / sizeof(scalar_t), y.get_device());
    visit_activation(act.act, [&](auto a) {
      const ForwardOp<decltype(a), scalar_t> op{cast_params<opmath_t>(act.params)};
      unary_kernel<<<blocks, kThreads, 0, stream>>>(xp, yp, n, vectorized, op);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

void activation_backward_cuda(at::Tensor& grad_x, const at::Tensor& grad_any,
                              const at::Tensor& x_any, SaveMode save, const ActivationSpec& act,
                              const DerivativeSpec& deriv,
                              const std::optional<at::Tensor>& blend) {
  using namespace cuda;
  if (grad_x.numel() == 0) return;
  const c10::cuda::CUDAGuard guard(grad_x.device());
  const at::Tensor x = in_layout_of(x_any, grad_x);
  // A gradient broadcast from one value (all strides 0) is read as a scalar.
  bool broadcast_grad = true;
  for (int64_t s : grad_any.strides()) broadcast_grad = broadcast_grad && s == 0;
  const at::Tensor grad = broadcast_grad ? grad_any : in_layout_of(grad_any, grad_x);
  // A CUDA blend is read by the kernel (no sync); a CPU one travels by value.
  at::Tensor blend_device;
  double blend_value = 0.0;
  if (blend.has_value() && blend->defined()) {
    if (blend->is_cuda()) {
      blend_device = blend->to(at::kFloat);
    } else {
      blend_value = read_cpu_blend(act, blend);
    }
  }
  const bool blending = blend_device.defined() || blend_value != 0.0;
  const int64_t n = grad_x.numel();
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad_x.scalar_type(), "artderiv_backward_cuda", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* outp = grad_x.mutable_data_ptr<scalar_t>();
    const bool vectorized = aligned(xp) && aligned(outp) && (broadcast_grad || aligned(gp));
    const int blocks = blocks_for(n, kVectorBytes / sizeof(scalar_t), grad_x.get_device());
    const BackwardArgs<opmath_t> args{act.act,
                                      cast_params<opmath_t>(act.params),
                                      deriv.exact_of,
                                      cast_params<opmath_t>(deriv.exact_of_params),
                                      static_cast<opmath_t>(deriv.exact_of_center),
                                      cast_params<opmath_t>(deriv.params),
                                      deriv.uses_exact,
                                      blending,
                                      save == SaveMode::Output,
                                      static_cast<opmath_t>(act.center),
                                      blend_device.defined() ? blend_device.const_data_ptr<float>() : nullptr,
                                      static_cast<opmath_t>(blend_value)};
    visit_derivative(deriv.deriv, [&](auto d) {
      const BackwardOp<decltype(d), scalar_t> op{args};
      backward_kernel<<<blocks, kThreads, 0, stream>>>(gp, broadcast_grad ? 0 : 1, xp, outp, n,
                                                       vectorized, op);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

TORCH_LIBRARY_IMPL(artderiv, CUDA, m) {
  m.impl("activation_forward", &forward_op<activation_forward_cuda>);
  m.impl("activation_backward", &backward_op<activation_backward_cuda>);
}

}  // namespace artderiv
