// The CUDA key of the helper ops: activation_kernels.cuh on the CUDA runtime.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../ops.h"
#include "activation_kernels.cuh"

namespace artderiv {
namespace cuda {
namespace {

struct CudaDevice {
  struct Guard {
    explicit Guard(const at::Tensor& t) : guard(t.device()) {}
    c10::cuda::CUDAGuard guard;
  };

  static int sm_count(const at::Tensor& t) {
    static int cached[64] = {0};  // per device index; a benign race fills it once
    const int device = t.get_device();
    int& sms = cached[device % 64];
    if (sms == 0) {
      C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    }
    return sms;
  }

  static bool holds(const at::Tensor& t) { return t.is_cuda(); }

  template <class... Params, class... Args>
  static void launch(void (*kernel)(Params...), int blocks, Args... args) {
    kernel<<<blocks, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(args...);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

}  // namespace
}  // namespace cuda

void activation_forward_cuda(at::Tensor& y, const at::Tensor& x, const ActivationSpec& act) {
  cuda::activation_forward<cuda::CudaDevice>(y, x, act);
}

void activation_backward_cuda(at::Tensor& grad_x, const at::Tensor& grad, const at::Tensor& saved,
                              SaveMode save, const ActivationSpec& act, const DerivativeSpec& deriv,
                              const std::optional<at::Tensor>& blend) {
  cuda::activation_backward<cuda::CudaDevice>(grad_x, grad, saved, save, act, deriv, blend);
}

TORCH_LIBRARY_IMPL(artderiv, CUDA, m) {
  m.impl("activation_forward", &forward_op<activation_forward_cuda>);
  m.impl("activation_backward", &backward_op<activation_backward_cuda>);
}

}  // namespace artderiv
