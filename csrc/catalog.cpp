#include "catalog.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <vector>

#include <c10/util/Exception.h>

namespace artderiv {
namespace {

using CheckFn = const char* (*)(const Params<double>&);

struct ActivationEntry {
  const char* name;
  Act act;
  c10::ArrayRef<ParamSpec> params;
  const char* default_derivative;
  CheckFn check;
  double (*center)(const Params<double>&);
  bool has_output_derivative;
  bool elementary_forward;
  bool product_backward;
};

struct DerivativeEntry {
  const char* name;
  Deriv deriv;
  c10::ArrayRef<ParamSpec> params;
  bool uses_exact;
  bool uses_input;
  bool variadic;
  CheckFn check;
  const char* formula;
  const char* source;
};

#define ARTDERIV_ACT_ENTRY(id, S) \
  {S::name, Act::id, S::params, S::default_derivative, &S::check, &S::center, \
   S::has_output_derivative, S::elementary_forward, S::product_backward},
const ActivationEntry kActivations[] = {ARTDERIV_ACTIVATIONS(ARTDERIV_ACT_ENTRY)};
#undef ARTDERIV_ACT_ENTRY

#define ARTDERIV_DERIV_ENTRY(id, S) \
  {S::name,  Deriv::id,    S::params, S::uses_exact, S::uses_input, \
   S::variadic, &S::check, S::formula, S::source},
const DerivativeEntry kDerivatives[] = {ARTDERIV_DERIVATIVES(ARTDERIV_DERIV_ENTRY)};
#undef ARTDERIV_DERIV_ENTRY

constexpr c10::string_view kLikePrefix = "like:";

bool is_like(c10::string_view derivative) { return derivative.substr(0, kLikePrefix.size()) == kLikePrefix; }

// For "like:<g>", g; empty for any other name.
c10::string_view like_target(c10::string_view derivative) {
  return is_like(derivative) ? derivative.substr(kLikePrefix.size()) : c10::string_view();
}

// "a, b, c": the names of the entries that `keep` accepts (all by default).
template <class Entries, class Keep>
std::string names_of(const Entries& entries, const Keep& keep) {
  std::string out;
  for (const auto& e : entries) {
    if (!keep(e)) continue;
    out += (out.empty() ? "" : ", ");
    out += e.name;
  }
  return out;
}

template <class Entries>
std::string names_of(const Entries& entries) {
  return names_of(entries, [](const auto&) { return true; });
}

std::string param_names(c10::ArrayRef<ParamSpec> specs) {
  std::string out;
  for (const auto& s : specs) {
    out += (out.empty() ? "" : ", ");
    out += s.name;
  }
  return out.empty() ? "none" : out;
}

// The kernels compute in float for float32, float16 and bfloat16 tensors, so a
// parameter must keep its constraint as a float: 1e39 would be inf there, and
// 1e-300 zero (NaN results, silently). A positive or non-zero one must be a
// normal float (at least 1.2e-38): formulas divide by them, and 1 / 1e-39 is
// inf. (Values near the limits can still overflow inside a formula.)
const char* constraint_text(Constraint c) {
  switch (c) {
    case Constraint::Positive:
      return "positive and finite, also as a float32 (1.2e-38 to 3.4e38)";
    case Constraint::NonNegative:
      return "non-negative and finite, also as a float32 (at most 3.4e38)";
    case Constraint::NonZero:
      return "non-zero and finite, also as a float32 (magnitude 1.2e-38 to 3.4e38)";
    case Constraint::Finite:
      break;
  }
  return "finite, also as a float32 (magnitude at most 3.4e38)";
}

// v for an error message: short (1, 0.01), but with every digit where short
// would hide why it was refused (1.0000001 is not 1).
std::string number_text(double v) {
  std::ostringstream os;
  os << v;
  if (std::strtod(os.str().c_str(), nullptr) != v) {
    os.str("");
    os.precision(17);
    os << v;
  }
  return os.str();
}

bool fits_float32(double v) { return std::fabs(v) <= static_cast<double>(std::numeric_limits<float>::max()); }

bool satisfies(double v, Constraint c) {
  if (!fits_float32(v)) return false;  // also false for inf and NaN
  const float f = static_cast<float>(v);
  switch (c) {
    case Constraint::Positive:
      return v > 0 && f >= std::numeric_limits<float>::min();
    case Constraint::NonNegative:
      return v >= 0;
    case Constraint::NonZero:
      return std::fabs(f) >= std::numeric_limits<float>::min();
    case Constraint::Finite:
      break;
  }
  return true;
}

// Names a parameter list in errors. In an op call: "artderiv.relu: argument
// 'derivative_params' for 'sigmoid'" (no `owner` for the activation's own
// parameters); for artderiv.derivatives objects (op == nullptr):
// "artderiv.derivatives.sigmoid", "artderiv.derivatives.like('elu')".
// Formatted only when a check fails: the call path builds no string.
struct ParamsPlace {
  const char* op;
  const char* what;
  c10::string_view owner;
};

std::ostream& operator<<(std::ostream& os, const ParamsPlace& p) {
  if (p.op == nullptr) {
    os << "artderiv.derivatives.";
    const c10::string_view like = like_target(p.owner);
    return like.empty() ? os << p.owner : os << "like('" << like << "')";
  }
  os << "artderiv." << p.op << ": argument '" << p.what << "'";
  return p.owner.empty() ? os : os << " for '" << p.owner << "'";
}

// Fills defaults and checks each value. A variadic formula (table) takes the
// list as given, and its check validates the values (it can name them).
Params<double> resolve_params(const ParamsPlace& place, c10::ArrayRef<ParamSpec> specs, bool variadic,
                              CheckFn check, c10::ArrayRef<double> given) {
  Params<double> p{};
  if (variadic) {
    TORCH_CHECK_VALUE(given.size() <= static_cast<size_t>(kMaxParams), place, " takes at most ", kMaxParams,
                      " values, got ", given.size());
    std::copy(given.begin(), given.end(), p.v);
    p.count = static_cast<int>(given.size());
  } else {
    TORCH_CHECK_VALUE(given.size() <= specs.size(), place, " takes at most ", specs.size(), " value(s) (",
                      param_names(specs), "), got ", given.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      const double v = i < given.size() ? given[i] : specs[i].default_value;
      TORCH_CHECK_VALUE(satisfies(v, specs[i].constraint), place, ": parameter '", specs[i].name,
                        "' must be ", constraint_text(specs[i].constraint), ", got ", number_text(v));
      p.v[i] = v;
    }
    p.count = static_cast<int>(specs.size());
  }
  const char* problem = check(p);
  TORCH_CHECK_VALUE(problem == nullptr, place, ": ", problem ? problem : "");
  return p;
}

void append_params_json(std::ostringstream& os, c10::ArrayRef<ParamSpec> specs) {
  os << "[";
  for (size_t i = 0; i < specs.size(); ++i) {
    const char* c = specs[i].constraint == Constraint::Positive      ? "positive"
                    : specs[i].constraint == Constraint::NonNegative ? "nonnegative"
                    : specs[i].constraint == Constraint::NonZero     ? "nonzero"
                                                                     : "finite";
    os << (i ? ", " : "") << "{\"name\": \"" << specs[i].name
       << "\", \"default\": " << specs[i].default_value << ", \"constraint\": \"" << c << "\"}";
  }
  os << "]";
}

// The catalog entry a derivative name takes its parameters from: a shape's,
// or for like:<g> the activation g's; neither for an unknown name.
struct DerivativeLookup {
  const DerivativeEntry* shape = nullptr;
  const ActivationEntry* like = nullptr;
};

DerivativeLookup find_derivative(c10::string_view derivative) {
  const c10::string_view like = like_target(derivative);
  if (!like.empty()) {
    for (const auto& a : kActivations) {
      if (like == a.name) return {nullptr, &a};
    }
  } else {
    for (const auto& e : kDerivatives) {
      if (derivative == e.name) return {&e, nullptr};
    }
  }
  return {};
}

// What an unknown derivative name could have been ("default" only in an op
// call, where it means the activation's default shape).
std::string allowed_derivatives(c10::string_view derivative, bool with_default) {
  if (is_like(derivative)) {
    return "'like:' takes an activation: " + names_of(kActivations);
  }
  return std::string("allowed: ") + (with_default ? "default, " : "") + names_of(kDerivatives) +
         ", like:<activation>";
}

Params<double> resolve_derivative_params(const ParamsPlace& place, const DerivativeLookup& found,
                                         c10::ArrayRef<double> params) {
  if (found.like != nullptr) {
    return resolve_params(place, found.like->params, false, found.like->check, params);
  }
  return resolve_params(place, found.shape->params, found.shape->variadic, found.shape->check, params);
}

}  // namespace

ActivationSpec resolve_activation(c10::string_view activation, c10::ArrayRef<double> params) {
  for (const auto& e : kActivations) {
    if (activation == e.name) {
      const Params<double> p =
          resolve_params({e.name, "activation_params", {}}, e.params, false, e.check, params);
      return {e.act, p, e.name, e.center(p), e.has_output_derivative, e.elementary_forward,
              e.product_backward};
    }
  }
  TORCH_CHECK_VALUE(false, "artderiv::activation: argument 'activation' is '", activation,
                    "'; allowed: ", names_of(kActivations));
}

DerivativeSpec resolve_derivative(const ActivationSpec& act, c10::string_view derivative,
                                  c10::ArrayRef<double> params) {
  if (derivative == "default") {
    for (const auto& a : kActivations) {
      if (a.act == act.act) derivative = a.default_derivative;
    }
  }
  const DerivativeLookup found = find_derivative(derivative);
  TORCH_CHECK_VALUE(found.like != nullptr || found.shape != nullptr, "artderiv.", act.name,
                    ": argument 'derivative' is '", derivative, "'; ",
                    allowed_derivatives(derivative, true));
  const Params<double> p =
      resolve_derivative_params({act.name, "derivative_params", derivative}, found, params);
  if (found.like != nullptr) {
    return {Deriv::exact, Params<double>{}, true, true, found.like->act, p, true, act.center};
  }
  const DerivativeEntry& e = *found.shape;
  return {e.deriv, p, e.uses_exact, e.uses_input, act.act, act.params, false, 0.0};
}

void check_derivative(c10::string_view derivative, c10::ArrayRef<double> params) {
  const DerivativeLookup found = find_derivative(derivative);
  TORCH_CHECK_VALUE(found.like != nullptr || found.shape != nullptr,
                    "artderiv.derivatives: unknown derivative '", derivative, "'; ",
                    allowed_derivatives(derivative, false));
  resolve_derivative_params({nullptr, nullptr, derivative}, found, params);
}

SaveMode resolve_save(const ActivationSpec& act, const DerivativeSpec& deriv,
                      c10::string_view save) {
  const bool output_possible = act.has_output_derivative && !deriv.uses_input;
  if (save == "input") return SaveMode::Input;
  if (save == "auto") return output_possible ? SaveMode::Output : SaveMode::Input;
  TORCH_CHECK_VALUE(save == "output", "artderiv.", act.name, ": argument 'save' is '", save,
                    "'; allowed: input, output, auto");
  TORCH_CHECK_VALUE(act.has_output_derivative, "artderiv.", act.name,
                    ": argument 'save' is 'output', but the derivative of '", act.name,
                    "' does not follow from its output; save='output' needs one of: ",
                    names_of(kActivations, [](const ActivationEntry& e) { return e.has_output_derivative; }),
                    ". Use 'input' or 'auto'");
  TORCH_CHECK_VALUE(!deriv.uses_input, "artderiv.", act.name,
                    ": argument 'save' is 'output', but the derivative reads the input x; "
                    "save='output' needs one that reads only f'(x): ",
                    names_of(kDerivatives, [](const DerivativeEntry& e) { return !e.uses_input; }),
                    ". Use 'input' or 'auto'");
  return SaveMode::Output;
}

const char* save_mode_name(SaveMode mode) { return mode == SaveMode::Output ? "output" : "input"; }

bool is_kernel_dtype(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

void check_input(const ActivationSpec& act, const at::Tensor& x, const char* arg) {
  TORCH_CHECK(x.defined(), "artderiv.", act.name, ": argument '", arg, "' is an undefined tensor");
  // (Without this, the dispatcher's error for a sparse input names the helper op.)
  if (C10_UNLIKELY(x.layout() != at::kStrided || x.is_nested())) {
    TORCH_CHECK_TYPE(false, "artderiv.", act.name, ": argument '", arg, "' is a ",
                     x.is_nested() ? std::string("nested") : c10::str(x.layout()),
                     " tensor; allowed: dense (torch.strided) tensors");
  }
  const auto t = x.scalar_type();
  TORCH_CHECK_TYPE(is_kernel_dtype(t), "artderiv.", act.name, ": argument '", arg, "' has dtype ", t,
                   "; allowed: ", kKernelDtypeNames);
}

void check_grad(const ActivationSpec& act, const at::Tensor& grad, const at::Tensor& x) {
  TORCH_CHECK(grad.defined(), "artderiv.", act.name, ": argument 'grad' is an undefined tensor");
  TORCH_CHECK_TYPE(grad.scalar_type() == x.scalar_type(), "artderiv.", act.name,
                   ": argument 'grad' has dtype ", grad.scalar_type(), "; must match x's dtype ",
                   x.scalar_type());
  // Symbolic sizes (torch.compile dynamic shapes) are compared without specialising them.
  bool same_shape = grad.dim() == x.dim();
  for (int64_t i = 0; same_shape && i < x.dim(); ++i) {
    same_shape = grad.sym_size(i).sym_eq(x.sym_size(i)).guard_bool(__FILE__, __LINE__);
  }
  TORCH_CHECK_VALUE(same_shape, "artderiv.", act.name, ": argument 'grad' has shape ",
                    grad.sym_sizes(), "; must match x's shape ", x.sym_sizes());
  TORCH_CHECK(grad.device() == x.device(), "artderiv.", act.name, ": argument 'grad' is on ",
              grad.device(), "; must be on x's device ", x.device());
}

void check_blend(const ActivationSpec& act, const std::optional<at::Tensor>& blend,
                 const at::Tensor& x) {
  if (!blend.has_value() || !blend->defined()) return;
  TORCH_CHECK_VALUE(blend->numel() == 1, "artderiv.", act.name,
                    ": argument 'blend' must be a one-element tensor, got shape ", blend->sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(blend->scalar_type()), "artderiv.", act.name,
                   ": argument 'blend' must be a floating tensor, got dtype ",
                   blend->scalar_type());
  TORCH_CHECK(blend->device() == x.device() || blend->device().is_cpu(), "artderiv.", act.name,
              ": argument 'blend' is on ", blend->device(), "; allowed: x's device (",
              x.device(), ") or cpu");
  // A real CPU value is checked at the call, in every mode; fake and meta
  // tensors (torch.compile tracing) have no value to read.
  if (blend->is_cpu() && !blend->unsafeGetTensorImpl()->is_python_dispatch()) {
    read_cpu_blend(act, blend);
  }
}

double read_cpu_blend(const ActivationSpec& act, const std::optional<at::Tensor>& blend) {
  if (!blend.has_value() || !blend->defined()) return 0.0;
  const double b = blend->item<double>();
  TORCH_CHECK_VALUE(b >= 0.0 && b <= 1.0, "artderiv.", act.name,
                    ": argument 'blend' must be in [0, 1], got ", number_text(b));
  return b;
}

std::string catalog_json() {
  std::ostringstream os;
  os.precision(17);
  os << "{\"activations\": [";
  bool first = true;
  for (const auto& e : kActivations) {
    os << (first ? "" : ", ") << "{\"name\": \"" << e.name << "\", \"params\": ";
    append_params_json(os, e.params);
    os << ", \"default_derivative\": \"" << e.default_derivative
       << "\", \"output_derivative\": " << (e.has_output_derivative ? "true" : "false") << "}";
    first = false;
  }
  os << "], \"derivatives\": [";
  first = true;
  for (const auto& e : kDerivatives) {
    os << (first ? "" : ", ") << "{\"name\": \"" << e.name << "\", \"params\": ";
    append_params_json(os, e.params);
    os << ", \"uses_exact\": " << (e.uses_exact ? "true" : "false")
       << ", \"uses_input\": " << (e.uses_input ? "true" : "false")
       << ", \"variadic\": " << (e.variadic ? "true" : "false") << ", \"formula\": \""
       << e.formula << "\", \"source\": \"" << e.source << "\"}";
    first = false;
  }
  os << ", {\"name\": \"like\", \"params\": [], \"uses_exact\": true, \"uses_input\": true, "
        "\"variadic\": false, "
        "\"formula\": \"g'(x) for another activation g (op name like:<g>, params: g's)\", "
        "\"source\": \"SUGAR, Horuz et al. 2025 (e.g. relu with like:elu, like:silu)\"}";
  os << "], \"max_table_knots\": " << kMaxTableKnots << "}";
  return os.str();
}

}  // namespace artderiv
