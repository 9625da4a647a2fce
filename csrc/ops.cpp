// Op schemas, the Meta kernels and the below-autograd kernel of the public op.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "artderiv.h"
#include "ops.h"

namespace artderiv {
namespace {

// Meta: shapes, dtypes and strides only; forward_op/backward_op already
// validated and allocated like the real backends do.
void forward_meta(at::Tensor&, const at::Tensor&, const ActivationSpec&) {}
void backward_meta(at::Tensor&, const at::Tensor&, const at::Tensor&, SaveMode,
                   const ActivationSpec&, const DerivativeSpec&,
                   const std::optional<at::Tensor>&) {}

// The public op below autograd (inference_mode, no autograd key, libtorch
// c10::InferenceMode): the forward alone, with the derivative arguments still
// checked so a bad call fails the same way in every mode.
at::Tensor activation_no_autograd(const at::Tensor& x, c10::string_view activation,
                                  c10::ArrayRef<double> activation_params,
                                  c10::string_view derivative,
                                  c10::ArrayRef<double> derivative_params,
                                  const std::optional<at::Tensor>& blend, c10::string_view save) {
  check_activation_call(x, activation, activation_params, derivative, derivative_params, blend,
                        save);
  static auto forward = c10::Dispatcher::singleton()
                            .findSchemaOrThrow("artderiv::activation_forward", "")
                            .typed<at::Tensor(const at::Tensor&, c10::string_view,
                                              c10::ArrayRef<double>)>();
  return forward.call(x, activation, activation_params);
}

#ifndef ARTDERIV_WITH_CUDA
[[noreturn]] void no_cuda() {
  TORCH_CHECK(false,
              "artderiv was built without CUDA kernels, so it cannot run on a CUDA tensor. "
              "Rebuild with a CUDA build of torch and nvcc (ARTDERIV_CUDA=1 pip install "
              "--no-build-isolation .), or move the tensor to the CPU.");
}
void forward_no_cuda(at::Tensor&, const at::Tensor&, const ActivationSpec&) { no_cuda(); }
void backward_no_cuda(at::Tensor&, const at::Tensor&, const at::Tensor&, SaveMode,
                      const ActivationSpec&, const DerivativeSpec&,
                      const std::optional<at::Tensor>&) {
  no_cuda();
}
#endif

// activation.plain: the public op with save="auto", the default derivative
// parameters and no blend, for eager Python calls (the common calls of
// artderiv.<name>). Python's boxed call parses every argument and looks up
// each schema argument it was not given in the keyword arguments, which costs
// a fraction of a microsecond each (benchmarks/RESULTS.md, item 3): hence
// few arguments, in the order the common call fills them. It decomposes into
// the op itself, so autograd, the checks and every backend are the op's.
at::Tensor activation_plain(const at::Tensor& x, c10::string_view activation,
                            c10::string_view derivative, c10::ArrayRef<double> activation_params) {
  return artderiv::activation(x, activation, activation_params, derivative, {}, std::nullopt, "auto");
}

std::string catalog() { return catalog_json(); }

}  // namespace

TORCH_LIBRARY(artderiv, m) {
  // One generic op rather than one op per activation: the catalog grows by
  // names, not by schemas, so saved TorchScript models and exported programs
  // stay valid as activations and derivatives are added; the graph still reads
  // artderiv::activation(%x, "relu", [], "sigmoid", [4.], None, "input").
  m.def(
      "activation(Tensor x, str activation, float[] activation_params=[], "
      "str derivative=\"default\", float[] derivative_params=[], Tensor? blend=None, "
      "str save=\"input\") -> Tensor");
  m.def(
      "activation.plain(Tensor x, str activation, str derivative=\"default\", "
      "float[] activation_params=[]) -> Tensor");
  m.def("activation_forward(Tensor x, str activation, float[] activation_params) -> Tensor");
  m.def(
      "activation_backward(Tensor grad, Tensor saved, str save, str activation, "
      "float[] activation_params, str derivative, float[] derivative_params, "
      "Tensor? blend) -> Tensor");
  // JSON description of every activation and derivative (names, parameters, defaults).
  m.def("catalog() -> str", &catalog);
  // The op's checks of a derivative's parameters, for the Python objects that
  // hold them (artderiv.derivatives.sigmoid(beta=-1) raises when made).
  m.def("check_derivative(str derivative, float[] params) -> ()", &check_derivative);
}

TORCH_LIBRARY_IMPL(artderiv, CompositeExplicitAutograd, m) {
  m.impl("activation", &activation_no_autograd);
}

TORCH_LIBRARY_IMPL(artderiv, CompositeImplicitAutograd, m) {
  m.impl("activation.plain", &activation_plain);
}

TORCH_LIBRARY_IMPL(artderiv, Meta, m) {
  m.impl("activation_forward", &forward_op<forward_meta>);
  m.impl("activation_backward", &backward_op<backward_meta>);
}

#ifndef ARTDERIV_WITH_CUDA
TORCH_LIBRARY_IMPL(artderiv, CUDA, m) {
  m.impl("activation_forward", &forward_op<forward_no_cuda>);
  m.impl("activation_backward", &backward_op<backward_no_cuda>);
}
#endif

}  // namespace artderiv
