// Autograd for artderiv::activation, in C++ so that TorchScript and libtorch
// models train without Python. The forward saves its input x, or its output
// y where the save mode allows (see SaveMode in catalog.h); the backward calls
// artderiv::activation_backward through the dispatcher (so it runs on whatever
// backend holds the tensors, and torch.compile / export trace the helper ops).
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include "../ops.h"

namespace artderiv {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor call_forward(const at::Tensor& x, c10::string_view activation,
                        c10::ArrayRef<double> activation_params) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("artderiv::activation_forward", "")
                       .typed<at::Tensor(const at::Tensor&, c10::string_view,
                                         c10::ArrayRef<double>)>();
  return op.call(x, activation, activation_params);
}

at::Tensor call_backward(const at::Tensor& grad, const at::Tensor& saved, c10::string_view save,
                         c10::string_view activation, c10::ArrayRef<double> activation_params,
                         c10::string_view derivative, c10::ArrayRef<double> derivative_params,
                         const std::optional<at::Tensor>& blend) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("artderiv::activation_backward", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, c10::string_view,
                            c10::string_view, c10::ArrayRef<double>, c10::string_view,
                            c10::ArrayRef<double>, const std::optional<at::Tensor>&)>();
  return op.call(grad, saved, save, activation, activation_params, derivative, derivative_params,
                 blend);
}

// What a training step saves into the autograd context, with few allocations:
// the strings a call carries (catalog names, "default", "like:<activation>",
// save modes: a small set, as every call is checked first) become IValues once
// per thread, then each save is a reference-count increment; empty parameter
// lists (the common case) share one list, which nothing mutates.
c10::IValue name_value(c10::string_view name) {
  constexpr size_t kMaxNames = 64;  // a bound, should a caller pass unchecked names
  thread_local std::vector<std::pair<std::string, c10::IValue>> names;
  for (const auto& entry : names) {
    if (entry.first == name) return entry.second;
  }
  c10::IValue value(std::string{name});
  if (names.size() < kMaxNames) names.emplace_back(std::string(name), value);
  return value;
}

c10::IValue params_value(c10::ArrayRef<double> params) {
  thread_local const c10::IValue empty{c10::List<double>()};
  return params.empty() ? empty : c10::IValue(params.vec());
}

// Forward-mode AD (dual tensors) has no tangent rule here: torch's C++
// Function raises for it, and the paths that build no node would drop the
// tangent silently, so every path raises this instead.
void check_no_forward_ad(c10::string_view activation, std::initializer_list<const at::Tensor*> ts) {
  for (const at::Tensor* t : ts) {
    TORCH_CHECK_NOT_IMPLEMENTED(!t->_fw_grad(/*level=*/0).defined(), "artderiv.", activation,
                                ": forward-mode AD (torch.autograd.forward_ad dual tensors) is not "
                                "supported; use reverse mode (backward, torch.autograd.grad)");
  }
}

class ActivationFunction : public torch::autograd::Function<ActivationFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, c10::string_view activation,
                            c10::ArrayRef<double> activation_params, c10::string_view derivative,
                            c10::ArrayRef<double> derivative_params,
                            const std::optional<at::Tensor>& blend, SaveMode save) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor y = call_forward(x, activation, activation_params);
    // Saving the output y is what torch's sigmoid/tanh/relu do; autograd then
    // rejects a later in-place change of y, as it does for theirs.
    ctx->save_for_backward({save == SaveMode::Output ? y : x,
                            blend.has_value() ? *blend : at::Tensor()});
    auto& saved = ctx->saved_data;
    saved.reserve(5);
    saved.emplace("activation", name_value(activation));
    saved.emplace("act_params", params_value(activation_params));
    saved.emplace("derivative", name_value(derivative));
    saved.emplace("deriv_params", params_value(derivative_params));
    saved.emplace("save", name_value(save_mode_name(save)));
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& blend = saved[1];
    const auto& data = ctx->saved_data;
    const auto activation_params = data.at("act_params").toDoubleVector();
    const auto derivative_params = data.at("deriv_params").toDoubleVector();
    at::Tensor grad_x = call_backward(
        grad_outputs[0], saved[0], data.at("save").toStringRef(),
        data.at("activation").toStringRef(), activation_params,
        data.at("derivative").toStringRef(), derivative_params,
        blend.defined() ? std::optional<at::Tensor>(blend) : std::nullopt);
    // Gradients for: x, activation, activation_params, derivative,
    // derivative_params, blend (a schedule, never learned), save.
    return {grad_x, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

// The backward op is differentiable in no input: differentiating through it
// (double backward, e.g. a Hessian-vector product) raises this error instead
// of silently returning a missing second-order term.
class ActivationBackwardFunction : public torch::autograd::Function<ActivationBackwardFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad, const at::Tensor& saved,
                            c10::string_view save, c10::string_view activation,
                            c10::ArrayRef<double> activation_params, c10::string_view derivative,
                            c10::ArrayRef<double> derivative_params,
                            const std::optional<at::Tensor>& blend) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor grad_x = call_backward(grad, saved, save, activation, activation_params, derivative,
                                      derivative_params, blend);
    // After the call, which checked the name (name_value caches only valid ones).
    ctx->saved_data.emplace("activation", name_value(activation));
    return grad_x;
  }

  static variable_list backward(AutogradContext* ctx, variable_list) {
    TORCH_CHECK(false, "artderiv.", ctx->saved_data.at("activation").toStringRef(),
                ": double backward is not supported (artderiv::activation_backward is not "
                "differentiable); artificial derivatives are first-order only. Use "
                "torch.autograd.grad(..., create_graph=False), or the torch.nn activation "
                "where second-order gradients are needed.");
  }
};

at::Tensor activation_autograd(const at::Tensor& x, c10::string_view activation,
                               c10::ArrayRef<double> activation_params,
                               c10::string_view derivative,
                               c10::ArrayRef<double> derivative_params,
                               const std::optional<at::Tensor>& blend, c10::string_view save) {
  // Fail at the call, not at backward time, for a bad derivative or blend.
  const SaveMode mode = check_activation_call(x, activation, activation_params, derivative,
                                              derivative_params, blend, save);
  check_no_forward_ad(activation, {&x});
  // blend is a schedule: the backward returns no gradient for it, which a
  // blend that requires one (an nn.Parameter, say) would take silently.
  TORCH_CHECK_VALUE(!(at::GradMode::is_enabled() && blend.has_value() && blend->requires_grad()),
                    "artderiv.", activation,
                    ": argument 'blend' requires grad, but no gradient flows to blend (it is a "
                    "schedule, not learned); pass a tensor without requires_grad, e.g. "
                    "blend.detach()");
  if (!at::GradMode::is_enabled() || !x.requires_grad()) {
    // Nothing to differentiate: skip the autograd node (and what it saves).
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_forward(x, activation, activation_params);
  }
  return ActivationFunction::apply(x, activation, activation_params, derivative,
                                   derivative_params, blend, mode);
}

at::Tensor activation_backward_autograd(const at::Tensor& grad, const at::Tensor& saved,
                                        c10::string_view save, c10::string_view activation,
                                        c10::ArrayRef<double> activation_params,
                                        c10::string_view derivative,
                                        c10::ArrayRef<double> derivative_params,
                                        const std::optional<at::Tensor>& blend) {
  check_no_forward_ad(activation, {&grad, &saved});
  const bool differentiable =
      at::GradMode::is_enabled() &&
      (grad.requires_grad() || saved.requires_grad() || (blend && blend->requires_grad()));
  if (!differentiable) {
    // The usual backward pass (create_graph=False runs it with grad mode
    // off): no node to build, only the kernel to run.
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_backward(grad, saved, save, activation, activation_params, derivative,
                         derivative_params, blend);
  }
  return ActivationBackwardFunction::apply(grad, saved, save, activation, activation_params,
                                           derivative, derivative_params, blend);
}

}  // namespace

TORCH_LIBRARY_IMPL(artderiv, Autograd, m) {
  m.impl("activation", &activation_autograd);
  m.impl("activation_backward", &activation_backward_autograd);
}

}  // namespace artderiv
