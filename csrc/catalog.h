// Resolving the op arguments (names, parameter lists, blend, save mode) into
// the enums and parameter structs the kernels take, with the argument checks
// shared by every backend (CPU, CUDA, Meta). Errors name the op as the user
// called it (artderiv.<activation>), the argument, and what is allowed.
#pragma once

#include <string>

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>
#include <optional>
#include <c10/util/string_view.h>

#include "formulas.h"

namespace artderiv {

struct ActivationSpec {
  Act act;
  Params<double> params;
  const char* name;  // e.g. "relu", used in error messages
  double center;     // the surrogate shapes see x - center (step's threshold)
  bool has_output_derivative;  // f'(x) follows from y = f(x) (sigmoid, tanh, relu)
  bool elementary_forward;     // the forward is compares, selects and multiplies (relu, step)
  bool product_backward;       // torch's backward is grad * f'(x), no select (sigmoid, elu, ...)
};

struct DerivativeSpec {
  Deriv deriv;
  Params<double> params;
  bool uses_exact;  // the shape reads an f'(x) ...
  bool uses_input;  // the shape reads x itself (not only f'(x))
  // ... of this activation: the layer's own, or another one for
  // "like:<activation>" (the exact derivative of another activation).
  Act exact_of;
  Params<double> exact_of_params;
  bool like;
  // Where exact_of's f' is read: x - exact_of_center. The activation's center
  // for like:<g> (a surrogate, centred like every shape), else 0 (f'(x) itself).
  double exact_of_center;
};

// grad * d without the gate (where d is 0, +0 for any grad): the unblended
// "exact" derivative of an activation whose torch backward is a plain product,
// so that an inf or NaN gradient gives NaN where f' saturates to 0, as in torch.
// (like:<g> is a surrogate: gated, as the other shapes.) Also evaluated at
// compile time, by kernels templated on the activation and the shape.
constexpr bool product_backward(bool activation_product, bool exact_shape, bool like) {
  return exact_shape && !like && activation_product;
}
inline bool product_backward(const ActivationSpec& act, const DerivativeSpec& deriv) {
  return product_backward(act.product_backward, deriv.deriv == Deriv::exact, deriv.like);
}

// What the forward keeps for the backward (the op's `save` argument):
//   "input"  x, always possible;
//   "output" y = f(x), when the activation's f' follows from y and the shape
//            reads only f' (exact, exact_plus, floor, identity): no exp in the
//            backward for sigmoid/tanh, as torch's own sigmoid/tanh backward;
//   "auto"   "output" where possible, else "input".
enum class SaveMode : uint8_t { Input, Output };

ActivationSpec resolve_activation(c10::string_view activation, c10::ArrayRef<double> params);

// `derivative` is a catalog name, "like:<activation>" (its params are that
// activation's) or "default" (the activation's default shape). An empty
// `params` means the defaults; a shorter list fills the rest with them.
DerivativeSpec resolve_derivative(const ActivationSpec& act, c10::string_view derivative,
                                  c10::ArrayRef<double> params);

// The checks resolve_derivative runs on a derivative's parameters, without an
// activation: for artderiv.derivatives objects, whose errors name them:
// "artderiv.derivatives.sigmoid: parameter 'beta' must be ...".
void check_derivative(c10::string_view derivative, c10::ArrayRef<double> params);

// The save mode `save` names for this activation and derivative ("auto"
// resolved); an error for an unknown name or an impossible "output".
SaveMode resolve_save(const ActivationSpec& act, const DerivativeSpec& deriv,
                      c10::string_view save);
const char* save_mode_name(SaveMode mode);

// The dtypes every kernel takes, and their names for error messages.
bool is_kernel_dtype(at::ScalarType t);
constexpr const char* kKernelDtypeNames = "float32, float64, float16, bfloat16";

// x: a floating tensor of a kernel dtype; `arg` names it in errors.
void check_input(const ActivationSpec& act, const at::Tensor& x, const char* arg = "x");

// grad: same dtype, device and shape as x (any strides).
void check_grad(const ActivationSpec& act, const at::Tensor& grad, const at::Tensor& x);

// blend: a one-element floating tensor on x's device or the CPU; a real CPU
// blend must also be in [0, 1] (a CUDA one is not read: that would sync).
void check_blend(const ActivationSpec& act, const std::optional<at::Tensor>& blend,
                 const at::Tensor& x);

// Reads a CPU blend tensor (0 when absent) and checks 0 <= blend <= 1.
double read_cpu_blend(const ActivationSpec& act, const std::optional<at::Tensor>& blend);

// The whole catalog (names, parameters, defaults, formulas) as JSON, for the
// Python layer and the docs: the Python side never repeats these definitions.
std::string catalog_json();

}  // namespace artderiv
