// The one definition of every activation and every derivative shape.
//
// Each activation is a struct with its metadata (name, parameters, default
// derivative), its forward f(x) and its exact derivative f'(x). Each derivative
// shape is a struct with its metadata and eval(x, exact, p): the factor the
// backward multiplies into the incoming gradient, given the input x and the
// activation's exact derivative at x (used by `exact`, `exact_plus`, blending).
//
// The formulas are templates over T, written only with + - * /, comparisons
// and the artderiv::math functions, so the same text compiles to
//   - scalar float/double code in the CUDA kernels (scalar_math.h),
//   - at::vec::Vectorized<float/double> code in the CPU kernels (cpu/vec_math.h).
// Half and bfloat16 tensors are computed in float (T = float) and rounded once.
//
// Adding an activation or a derivative: write its struct here and add one line
// to ARTDERIV_ACTIVATIONS or ARTDERIV_DERIVATIVES. Nothing else changes.
#pragma once

#include <array>
#include <cstdint>

#include "scalar_math.h"

namespace artderiv {

// Parameters travel by value into every kernel. Two slots cover every
// activation and derivative of the catalog.
constexpr int kMaxParams = 2;

template <class T>
struct Params {
  T p0, p1;
};

// What a parameter may be; every parameter must also be finite.
enum class Constraint : uint8_t { Finite, Positive, NonNegative };

struct ParamSpec {
  const char* name;
  double default_value;
  Constraint constraint;
};

// -------------------------------------------------------------------------
// Shared sub-formulas
// -------------------------------------------------------------------------

// Logistic sigma(x) = 1 / (1 + exp(-x)), as in ATen's CPU and CUDA sigmoid.
template <class T>
ARTDERIV_HD T logistic(T x) {
  return T(1) / (T(1) + math::exp(math::neg(x)));
}

// -------------------------------------------------------------------------
// Activations: forward f(x) and exact derivative f'(x), PyTorch's semantics.
// -------------------------------------------------------------------------

struct Relu {
  static constexpr const char* name = "relu";
  static constexpr const char* default_derivative = "sigmoid";
  static constexpr std::array<ParamSpec, 0> params{};
  // `x < 0 ? 0 : x` keeps NaN and -0.0 as torch.relu does.
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    return math::select(x < T(0), T(0), x);
  }
  // relu'(0) = 0; NaN passes the gradient, as threshold_backward does.
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>&) {
    return math::select(x <= T(0), T(0), T(1));
  }
};

struct LeakyRelu {
  static constexpr const char* name = "leaky_relu";
  static constexpr const char* default_derivative = "sigmoid";
  static constexpr std::array<ParamSpec, 1> params{{{"negative_slope", 0.01, Constraint::Finite}}};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>& p) {
    return math::select(x > T(0), x, x * p.p0);
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>& p) {
    return math::select(x > T(0), T(1), p.p0);
  }
};

struct Sigmoid {
  static constexpr const char* name = "sigmoid";
  static constexpr const char* default_derivative = "exact_plus";
  static constexpr std::array<ParamSpec, 0> params{};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    return logistic(x);
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>&) {
    const T s = logistic(x);
    return (T(1) - s) * s;
  }
};

struct Tanh {
  static constexpr const char* name = "tanh";
  static constexpr const char* default_derivative = "exact_plus";
  static constexpr std::array<ParamSpec, 0> params{};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    return math::tanh(x);
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>&) {
    const T t = math::tanh(x);
    return T(1) - t * t;
  }
};

// -------------------------------------------------------------------------
// Derivative shapes: the factor the backward multiplies into the gradient.
// `exact` is the activation's f'(x); it is only computed when
// uses_exact is true or a blend is given.
// -------------------------------------------------------------------------

struct Exact {
  static constexpr const char* name = "exact";
  static constexpr const char* formula = "f'(x)";
  static constexpr const char* source = "the activation's true derivative";
  static constexpr bool uses_exact = true;
  static constexpr std::array<ParamSpec, 0> params{};
  template <class T>
  ARTDERIV_HD static T eval(T, T exact, const Params<T>&) {
    return exact;
  }
};

struct SigmoidRamp {
  static constexpr const char* name = "sigmoid";
  static constexpr const char* formula = "sigma(beta*x)";
  static constexpr const char* source = "Hu, Zhang & Ge, IEEE Access 2021 (artificial derivative of ReLU)";
  static constexpr bool uses_exact = false;
  static constexpr std::array<ParamSpec, 1> params{{{"beta", 1.0, Constraint::Positive}}};
  template <class T>
  ARTDERIV_HD static T eval(T x, T, const Params<T>& p) {
    return logistic(p.p0 * x);
  }
};

struct ExactPlus {
  static constexpr const char* name = "exact_plus";
  static constexpr const char* formula = "f'(x) + c";
  static constexpr const char* source = "Roodschild, Gotay Sardinas & Will, 2020";
  static constexpr bool uses_exact = true;
  static constexpr std::array<ParamSpec, 1> params{{{"c", 0.05, Constraint::NonNegative}}};
  template <class T>
  ARTDERIV_HD static T eval(T, T exact, const Params<T>& p) {
    return exact + p.p0;
  }
};

struct Atan {
  static constexpr const char* name = "atan";
  static constexpr const char* formula = "(alpha/2) / (1 + (pi*alpha*x/2)^2)";
  static constexpr const char* source = "snnTorch atan, SpikingJelly ATan (surrogate gradient)";
  static constexpr bool uses_exact = false;
  static constexpr std::array<ParamSpec, 1> params{{{"alpha", 2.0, Constraint::Positive}}};
  template <class T>
  ARTDERIV_HD static T eval(T x, T, const Params<T>& p) {
    const T u = T(1.5707963267948966) * p.p0 * x;  // pi/2 * alpha * x
    return (T(0.5) * p.p0) / (T(1) + u * u);
  }
};

// -------------------------------------------------------------------------
// The catalog: one line per activation / derivative. _(EnumName, Struct)
// -------------------------------------------------------------------------
#define ARTDERIV_ACTIVATIONS(_) \
  _(relu, Relu)                 \
  _(leaky_relu, LeakyRelu)      \
  _(sigmoid, Sigmoid)           \
  _(tanh, Tanh)

#define ARTDERIV_DERIVATIVES(_) \
  _(exact, Exact)               \
  _(sigmoid, SigmoidRamp)       \
  _(exact_plus, ExactPlus)      \
  _(atan, Atan)

#define ARTDERIV_ENUM_ENTRY(id, S) id,
enum class Act : uint8_t { ARTDERIV_ACTIVATIONS(ARTDERIV_ENUM_ENTRY) };
enum class Deriv : uint8_t { ARTDERIV_DERIVATIVES(ARTDERIV_ENUM_ENTRY) };
#undef ARTDERIV_ENUM_ENTRY

// The visitors run host lambdas (kernel launches) and device lambdas alike.
#if defined(__CUDACC__)
#define ARTDERIV_VISIT_HD_ANNOTATION _Pragma("nv_exec_check_disable")
#else
#define ARTDERIV_VISIT_HD_ANNOTATION
#endif

// Calls fn(S{}) with the struct of the activation / derivative `id`, so a
// kernel can be instantiated per formula from one runtime switch.
#define ARTDERIV_ACT_CASE(id, S) \
  case Act::id:                  \
    return fn(S{});
#define ARTDERIV_DERIV_CASE(id, S) \
  case Deriv::id:                  \
    return fn(S{});

ARTDERIV_VISIT_HD_ANNOTATION
template <class Fn>
ARTDERIV_HD decltype(auto) visit_activation(Act act, Fn&& fn) {
  switch (act) {
    ARTDERIV_ACTIVATIONS(ARTDERIV_ACT_CASE)
  }
  return fn(Relu{});  // unreachable: validated before any kernel runs
}

ARTDERIV_VISIT_HD_ANNOTATION
template <class Fn>
ARTDERIV_HD decltype(auto) visit_derivative(Deriv deriv, Fn&& fn) {
  switch (deriv) {
    ARTDERIV_DERIVATIVES(ARTDERIV_DERIV_CASE)
  }
  return fn(Exact{});  // unreachable: validated before any kernel runs
}
#undef ARTDERIV_ACT_CASE
#undef ARTDERIV_DERIV_CASE

}  // namespace artderiv
