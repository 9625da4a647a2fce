// C++ API for libtorch programs: the public op through the dispatcher, so it
// runs on any backend and records autograd exactly as from Python.
//
//   #include <artderiv.h>
//   torch::Tensor y = artderiv::activation(x, "relu", {}, "sigmoid", {4.0});
//
// save defaults to "auto" here and in the Python API (the op schema's default
// stays "input", so models saved before "auto" existed mean the same).
//
// Linking the library (artderiv::artderiv from find_package(artderiv)) is
// enough for TorchScript models that use the ops; no call is needed.
#pragma once

#include <optional>

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/string_view.h>

namespace artderiv {

inline at::Tensor activation(const at::Tensor& x, c10::string_view activation,
                             c10::ArrayRef<double> activation_params = {},
                             c10::string_view derivative = "default",
                             c10::ArrayRef<double> derivative_params = {},
                             const std::optional<at::Tensor>& blend = std::nullopt,
                             c10::string_view save = "auto") {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("artderiv::activation", "")
                       .typed<at::Tensor(const at::Tensor&, c10::string_view, c10::ArrayRef<double>,
                                         c10::string_view, c10::ArrayRef<double>,
                                         const std::optional<at::Tensor>&, c10::string_view)>();
  return op.call(x, activation, activation_params, derivative, derivative_params, blend, save);
}

}  // namespace artderiv
