// The op contract shared by every backend (docs/ops.md has the user view).
//
//   artderiv::activation           public op: forward, artificial backward via autograd
//   artderiv::activation_forward   helper: y = f(x)
//   artderiv::activation_backward  helper: grad_x = grad * d(x), d = the chosen derivative
//
// A backend (CPU, CUDA, Meta) supplies two kernel functions that fill a
// preallocated output; forward_op / backward_op below do the argument
// resolution, checks and allocation once for all of them, so every backend
// validates alike and allocates like empty_like(x) (Meta strides == real strides).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>

#include "catalog.h"

namespace artderiv {

using ForwardKernel = void (*)(at::Tensor& y, const at::Tensor& x, const ActivationSpec& act);
// `saved` is x, or y = f(x) when save == SaveMode::Output (then every f' the
// backward reads comes from the activation's derivative_from_output).
using BackwardKernel = void (*)(at::Tensor& grad_x, const at::Tensor& grad, const at::Tensor& saved,
                                SaveMode save, const ActivationSpec& act,
                                const DerivativeSpec& deriv,
                                const std::optional<at::Tensor>& blend);

// The public op's checks, run at the call in every mode (autograd, inference,
// no autograd key), so a bad derivative or blend fails before any backward.
// Returns what the forward must save.
inline SaveMode check_activation_call(const at::Tensor& x, c10::string_view activation,
                                  c10::ArrayRef<double> activation_params,
                                  c10::string_view derivative,
                                  c10::ArrayRef<double> derivative_params,
                                  const std::optional<at::Tensor>& blend, c10::string_view save) {
  const ActivationSpec act = resolve_activation(activation, activation_params);
  const SaveMode mode = resolve_save(act, resolve_derivative(act, derivative, derivative_params), save);
  check_input(act, x);
  check_blend(act, blend, x);
  return mode;
}

template <ForwardKernel kernel>
at::Tensor forward_op(const at::Tensor& x, c10::string_view activation,
                      c10::ArrayRef<double> activation_params) {
  const ActivationSpec act = resolve_activation(activation, activation_params);
  check_input(act, x);
  at::Tensor y = at::empty_like(x);
  kernel(y, x, act);  // kernels handle empty tensors (no numel(): shapes may be symbolic)
  return y;
}

template <BackwardKernel kernel>
at::Tensor backward_op(const at::Tensor& grad, const at::Tensor& saved, c10::string_view save,
                       c10::string_view activation, c10::ArrayRef<double> activation_params,
                       c10::string_view derivative, c10::ArrayRef<double> derivative_params,
                       const std::optional<at::Tensor>& blend) {
  const ActivationSpec act = resolve_activation(activation, activation_params);
  const DerivativeSpec deriv = resolve_derivative(act, derivative, derivative_params);
  // What `saved` holds must be said: "auto" is for the forward to resolve.
  TORCH_CHECK_VALUE(save != "auto", "artderiv.", act.name,
                    ": argument 'save' of activation_backward is 'auto'; allowed: input, output "
                    "(what 'saved' holds; the forward resolves 'auto')");
  const SaveMode mode = resolve_save(act, deriv, save);
  check_input(act, saved, "saved");
  check_grad(act, grad, saved);
  check_blend(act, blend, saved);
  at::Tensor grad_x = at::empty_like(saved);
  kernel(grad_x, grad, saved, mode, act, deriv, blend);
  return grad_x;
}

// Backend kernels (defined in cpu/ and cuda/).
void activation_forward_cpu(at::Tensor& y, const at::Tensor& x, const ActivationSpec& act);
void activation_backward_cpu(at::Tensor& grad_x, const at::Tensor& grad, const at::Tensor& saved,
                             SaveMode save, const ActivationSpec& act, const DerivativeSpec& deriv,
                             const std::optional<at::Tensor>& blend);

}  // namespace artderiv
