#include "catalog.h"

#include <cmath>
#include <sstream>
#include <vector>

#include <c10/util/Exception.h>

namespace artderiv {
namespace {

struct ActivationEntry {
  const char* name;
  Act act;
  c10::ArrayRef<ParamSpec> params;
  const char* default_derivative;
};

struct DerivativeEntry {
  const char* name;
  Deriv deriv;
  c10::ArrayRef<ParamSpec> params;
  bool uses_exact;
  const char* formula;
  const char* source;
};

#define ARTDERIV_ACT_ENTRY(id, S) {S::name, Act::id, S::params, S::default_derivative},
const ActivationEntry kActivations[] = {ARTDERIV_ACTIVATIONS(ARTDERIV_ACT_ENTRY)};
#undef ARTDERIV_ACT_ENTRY

#define ARTDERIV_DERIV_ENTRY(id, S) \
  {S::name, Deriv::id, S::params, S::uses_exact, S::formula, S::source},
const DerivativeEntry kDerivatives[] = {ARTDERIV_DERIVATIVES(ARTDERIV_DERIV_ENTRY)};
#undef ARTDERIV_DERIV_ENTRY

template <class Entries>
std::string names_of(const Entries& entries) {
  std::string out;
  for (const auto& e : entries) {
    out += (out.empty() ? "" : ", ");
    out += e.name;
  }
  return out;
}

std::string param_names(c10::ArrayRef<ParamSpec> specs) {
  std::string out;
  for (const auto& s : specs) {
    out += (out.empty() ? "" : ", ");
    out += s.name;
  }
  return out.empty() ? "none" : out;
}

const char* constraint_text(Constraint c) {
  switch (c) {
    case Constraint::Positive:
      return "positive and finite";
    case Constraint::NonNegative:
      return "non-negative and finite";
    case Constraint::Finite:
      break;
  }
  return "finite";
}

bool satisfies(double v, Constraint c) {
  if (!std::isfinite(v)) return false;
  switch (c) {
    case Constraint::Positive:
      return v > 0;
    case Constraint::NonNegative:
      return v >= 0;
    case Constraint::Finite:
      break;
  }
  return true;
}

// Fills defaults and checks each value; `what` names the argument in errors.
Params<double> resolve_params(const char* op, const char* what, const char* owner,
                              c10::ArrayRef<ParamSpec> specs, c10::ArrayRef<double> given) {
  TORCH_CHECK_VALUE(given.size() <= specs.size(), "artderiv.", op, ": argument '", what, "' for '",
                    owner, "' takes at most ", specs.size(), " value(s) (", param_names(specs),
                    "), got ", given.size());
  double values[kMaxParams] = {0.0, 0.0};
  for (size_t i = 0; i < specs.size(); ++i) {
    const double v = i < given.size() ? given[i] : specs[i].default_value;
    TORCH_CHECK_VALUE(satisfies(v, specs[i].constraint), "artderiv.", op, ": argument '", what,
                      "': parameter '", specs[i].name, "' of '", owner, "' must be ",
                      constraint_text(specs[i].constraint), ", got ", v);
    values[i] = v;
  }
  return {values[0], values[1]};
}

void append_params_json(std::ostringstream& os, c10::ArrayRef<ParamSpec> specs) {
  os << "[";
  for (size_t i = 0; i < specs.size(); ++i) {
    const char* c = specs[i].constraint == Constraint::Positive      ? "positive"
                    : specs[i].constraint == Constraint::NonNegative ? "nonnegative"
                                                                     : "finite";
    os << (i ? ", " : "") << "{\"name\": \"" << specs[i].name
       << "\", \"default\": " << specs[i].default_value << ", \"constraint\": \"" << c << "\"}";
  }
  os << "]";
}

}  // namespace

ActivationSpec resolve_activation(c10::string_view activation, c10::ArrayRef<double> params) {
  for (const auto& e : kActivations) {
    if (activation == e.name) {
      return {e.act, resolve_params(e.name, "activation_params", e.name, e.params, params), e.name};
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
  for (const auto& e : kDerivatives) {
    if (derivative == e.name) {
      return {e.deriv, resolve_params(act.name, "derivative_params", e.name, e.params, params),
              e.uses_exact};
    }
  }
  TORCH_CHECK_VALUE(false, "artderiv.", act.name, ": argument 'derivative' is '", derivative,
                    "'; allowed: default, ", names_of(kDerivatives));
}

void check_save_mode(const ActivationSpec& act, c10::string_view save) {
  TORCH_CHECK_VALUE(save == kSaveInput, "artderiv.", act.name, ": argument 'save' is '", save,
                    "'; allowed: ", kSaveInput);
}

void check_input(const ActivationSpec& act, const at::Tensor& x) {
  TORCH_CHECK(x.defined(), "artderiv.", act.name, ": argument 'x' is an undefined tensor");
  const auto t = x.scalar_type();
  TORCH_CHECK_TYPE(t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16,
                   "artderiv.", act.name, ": argument 'x' has dtype ", t,
                   "; allowed: float32, float64, float16, bfloat16");
}

void check_grad(const ActivationSpec& act, const at::Tensor& grad, const at::Tensor& x) {
  TORCH_CHECK(grad.defined(), "artderiv.", act.name, ": argument 'grad' is an undefined tensor");
  TORCH_CHECK_TYPE(grad.scalar_type() == x.scalar_type(), "artderiv.", act.name,
                   ": argument 'grad' has dtype ", grad.scalar_type(), "; must match x's dtype ",
                   x.scalar_type());
  TORCH_CHECK_VALUE(grad.sizes() == x.sizes(), "artderiv.", act.name, ": argument 'grad' has shape ",
                    grad.sizes(), "; must match x's shape ", x.sizes());
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
}

double read_cpu_blend(const ActivationSpec& act, const std::optional<at::Tensor>& blend) {
  if (!blend.has_value() || !blend->defined()) return 0.0;
  const double b = blend->item<double>();
  TORCH_CHECK_VALUE(b >= 0.0 && b <= 1.0, "artderiv.", act.name,
                    ": argument 'blend' must be in [0, 1], got ", b);
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
    os << ", \"default_derivative\": \"" << e.default_derivative << "\"}";
    first = false;
  }
  os << "], \"derivatives\": [";
  first = true;
  for (const auto& e : kDerivatives) {
    os << (first ? "" : ", ") << "{\"name\": \"" << e.name << "\", \"params\": ";
    append_params_json(os, e.params);
    os << ", \"uses_exact\": " << (e.uses_exact ? "true" : "false") << ", \"formula\": \""
       << e.formula << "\", \"source\": \"" << e.source << "\"}";
    first = false;
  }
  os << "]}";
  return os.str();
}

}  // namespace artderiv
