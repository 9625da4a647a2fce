// Activations: forward f(x) and exact derivative f'(x), with PyTorch's values,
// NaN handling and convention at kinks wherever PyTorch has the function
// (tests/test_catalog.py checks every one against torch, kinks included).
// `default_derivative` is used when the caller names none.
#pragma once

#include "common.h"

namespace artderiv {

namespace detail {
// clamp(x, lo, hi) with NaN passing through, as torch.clamp / hardtanh.
template <class T>
ARTDERIV_HD T clamp(T x, T lo, T hi) {
  return math::clamp_max(math::clamp_min(x, lo), hi);  // lo <= hi: the catalog checks
}
}  // namespace detail

struct Relu : ActivationBase {
  static constexpr const char* name = "relu";
  static constexpr bool elementary_forward = true;
  static constexpr const char* default_derivative = "sigmoid";
  static constexpr std::array<ParamSpec, 0> params{};
  // `x < 0 ? 0 : x` keeps NaN and -0.0 as torch.relu does.
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    return math::clamp_min(x, T(0));
  }
  // relu'(0) = 0; NaN passes the gradient, as threshold_backward does.
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>&) {
    return math::select(x <= T(0), T(0), T(1));
  }
  // y > 0 exactly where x > 0 (and NaN stays NaN): relu'(relu(x)) == relu'(x),
  // which is how torch's relu backward reads its saved result.
  static constexpr bool has_output_derivative = true;
  template <class T>
  ARTDERIV_HD static T derivative_from_output(T y, const Params<T>& p) {
    return derivative(y, p);
  }
};

struct Relu6 : ActivationBase {
  static constexpr const char* name = "relu6";
  static constexpr bool elementary_forward = true;
  static constexpr const char* default_derivative = "sigmoid";
  static constexpr std::array<ParamSpec, 0> params{};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    return detail::clamp(x, T(0), T(6));
  }
  // hardtanh_backward: 1 strictly inside (0, 6), else 0 (NaN too).
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>&) {
    return math::select_or_zero(math::both(x > T(0), x < T(6)), T(1));
  }
};

struct LeakyRelu : ActivationBase {
  static constexpr const char* name = "leaky_relu";
  static constexpr bool product_backward = true;
  static constexpr bool elementary_forward = true;
  static constexpr const char* default_derivative = "sigmoid";
  static constexpr std::array<ParamSpec, 1> params{{{"negative_slope", 0.01, Constraint::Finite}}};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>& p) {
    return math::select(x > T(0), x, x * p[0]);
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>& p) {
    return math::select(x > T(0), T(1), p[0]);
  }
};

struct Elu : ActivationBase {
  static constexpr const char* name = "elu";
  static constexpr bool product_backward = true;
  static constexpr const char* default_derivative = "exact";
  static constexpr std::array<ParamSpec, 1> params{{{"alpha", 1.0, Constraint::Finite}}};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>& p) {
    return math::select(x <= T(0), p[0] * math::expm1(x), x);
  }
  // elu'(0) = alpha (the x <= 0 branch), NaN -> 1, as elu_backward.
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>& p) {
    return math::select(x <= T(0), p[0] * math::exp(x), T(1));
  }
};

struct Selu : ActivationBase {
  static constexpr const char* name = "selu";
  static constexpr bool product_backward = true;
  static constexpr const char* default_derivative = "exact";
  static constexpr std::array<ParamSpec, 0> params{};
  static constexpr double kAlpha = 1.6732632423543772848170429916717;
  static constexpr double kScale = 1.0507009873554804934193349852946;
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    return math::select(x <= T(0), T(kScale * kAlpha) * math::expm1(x), T(kScale) * x);
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>&) {
    return math::select(x <= T(0), T(kScale * kAlpha) * math::exp(x), T(kScale));
  }
};

struct Celu : ActivationBase {
  static constexpr const char* name = "celu";
  static constexpr bool product_backward = true;
  static constexpr const char* default_derivative = "exact";
  static constexpr std::array<ParamSpec, 1> params{{{"alpha", 1.0, Constraint::NonZero}}};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>& p) {
    return math::select(x <= T(0), p[0] * math::expm1(x / p[0]), x);
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>& p) {
    return math::select(x <= T(0), math::exp(x / p[0]), T(1));
  }
};

struct Softplus : ActivationBase {
  static constexpr const char* name = "softplus";
  static constexpr bool product_backward = true;
  static constexpr const char* default_derivative = "exact";
  static constexpr std::array<ParamSpec, 2> params{
      {{"beta", 1.0, Constraint::Positive}, {"threshold", 20.0, Constraint::Finite}}};
  // Linear above the threshold (in units of beta*x), as torch.
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>& p) {
    const T z = x * p[0];
    return math::select(z > p[1], x, math::log1p(math::exp(z)) / p[0]);
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>& p) {
    const T z = x * p[0];
    const T e = math::exp(z);
    return math::select(z > p[1], T(1), e / (e + T(1)));
  }
};

struct Sigmoid : ActivationBase {
  static constexpr const char* name = "sigmoid";
  static constexpr bool product_backward = true;
  static constexpr const char* default_derivative = "exact_plus";
  static constexpr std::array<ParamSpec, 0> params{};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    return logistic(x);
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>& p) {
    return derivative_from_output(logistic(x), p);
  }
  // sigmoid_backward's (1 - y) * y.
  static constexpr bool has_output_derivative = true;
  template <class T>
  ARTDERIV_HD static T derivative_from_output(T y, const Params<T>&) {
    return (T(1) - y) * y;
  }
};

struct Hardsigmoid : ActivationBase {
  static constexpr const char* name = "hardsigmoid";
  static constexpr const char* default_derivative = "exact_plus";
  static constexpr std::array<ParamSpec, 0> params{};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    return detail::clamp(x + T(3), T(0), T(6)) / T(6);
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>&) {
    return math::select_or_zero(math::both(x > T(-3), x < T(3)), T(1.0 / 6.0));
  }
};

struct Tanh : ActivationBase {
  static constexpr const char* name = "tanh";
  static constexpr bool product_backward = true;
  static constexpr const char* default_derivative = "exact_plus";
  static constexpr std::array<ParamSpec, 0> params{};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    return math::tanh(x);
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>& p) {
    return derivative_from_output(math::tanh(x), p);
  }
  // tanh_backward's 1 - y^2.
  static constexpr bool has_output_derivative = true;
  template <class T>
  ARTDERIV_HD static T derivative_from_output(T y, const Params<T>&) {
    return T(1) - y * y;
  }
};

struct Hardtanh : ActivationBase {
  static constexpr const char* name = "hardtanh";
  static constexpr bool elementary_forward = true;
  static constexpr const char* default_derivative = "exact_plus";
  static constexpr std::array<ParamSpec, 2> params{
      {{"min_val", -1.0, Constraint::Finite}, {"max_val", 1.0, Constraint::Finite}}};
  static const char* check(const Params<double>& p) {
    return p[0] < p[1] ? nullptr : "min_val must be less than max_val";
  }
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>& p) {
    return detail::clamp(x, p[0], p[1]);
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>& p) {
    return math::select_or_zero(math::both(x > p[0], x < p[1]), T(1));
  }
};

struct Silu : ActivationBase {
  static constexpr const char* name = "silu";
  static constexpr bool product_backward = true;
  static constexpr const char* default_derivative = "exact";
  static constexpr std::array<ParamSpec, 0> params{};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    return x / math::one_plus_exp(math::neg(x));
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>&) {
    const T s = logistic(x);
    return s * (T(1) + x * (T(1) - s));
  }
};

struct Hardswish : ActivationBase {
  static constexpr const char* name = "hardswish";
  static constexpr const char* default_derivative = "exact";
  static constexpr std::array<ParamSpec, 0> params{};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    return x * detail::clamp(x + T(3), T(0), T(6)) / T(6);
  }
  // hardswish_backward: 0 up to -3 (inclusive), x/3 + 1/2 below 3, then 1 (NaN too).
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>&) {
    return math::select(x <= T(-3), T(0), math::select(x < T(3), x / T(3) + T(0.5), T(1)));
  }
};

struct Gelu : ActivationBase {
  static constexpr const char* name = "gelu";
  static constexpr bool product_backward = true;
  static constexpr const char* default_derivative = "exact";
  static constexpr std::array<ParamSpec, 0> params{};
  static constexpr double kSqrt1_2 = 0.70710678118654752440;
  static constexpr double kInvSqrt2Pi = 0.39894228040143267794;
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    return x * T(0.5) * (T(1) + math::erf(x * T(kSqrt1_2)));
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>&) {
    const T cdf = T(0.5) * (T(1) + math::erf(x * T(kSqrt1_2)));
    const T pdf = math::exp(T(-0.5) * x * x) * T(kInvSqrt2Pi);
    return cdf + x * pdf;
  }
};

// gelu(approximate="tanh"): 0.5 x (1 + tanh(u)), u = beta (x + kappa x^3).
// Written with s = (1 + tanh(u)) / 2 = sigma(2u) and s (1 - s), both from
// e = exp(-2|u|) without cancellation: ATen's 1 + tanh(u) and 1 - tanh(u)^2
// cancel, and in float32 around x = -5 lose every digit of f' (0 or 8e-6 for
// 5.2e-6, by the last bit of tanh). The same NaN and infinity results.
struct GeluTanh : ActivationBase {
  static constexpr const char* name = "gelu_tanh";
  static constexpr bool product_backward = true;
  static constexpr const char* default_derivative = "exact";
  static constexpr std::array<ParamSpec, 0> params{};
  static constexpr double kBeta = 0.79788456080286535588;  // sqrt(2/pi)
  static constexpr double kKappa = 0.044715;
  // Writes s = sigma(2u) and returns s (1 - s).
  template <class T>
  ARTDERIV_HD static T sigma_2u(T x, T x_sq, T& s) {
    const T u = T(kBeta) * (x + T(kKappa) * x_sq * x);
    const T e = math::exp(T(-2) * math::abs(u));
    const T q = T(1) / (T(1) + e);
    s = math::select(u < T(0), e * q, q);
    return e * q * q;
  }
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    T s;
    sigma_2u(x, x * x, s);
    return x * s;
  }
  // f' = s + x s (1 - s) 2 u'(x), u' = beta (1 + 3 kappa x^2).
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>&) {
    const T x_sq = x * x;
    T s;
    const T s_1_s = sigma_2u(x, x_sq, s);
    return s + x * s_1_s * T(2 * kBeta) * (T(1) + T(3 * kKappa) * x_sq);
  }
};

struct Mish : ActivationBase {
  static constexpr const char* name = "mish";
  static constexpr bool product_backward = true;
  static constexpr const char* default_derivative = "exact";
  static constexpr std::array<ParamSpec, 0> params{};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    return x * math::tanh(math::log1p(math::exp(x)));
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>&) {
    const T s = logistic(x);
    const T t = math::tanh(math::log1p(math::exp(x)));
    return t + x * s * (T(1) - t * t);
  }
};

// Heaviside step for binary and spiking nets: 1 where x > threshold, else 0.
// Its exact derivative is 0; the surrogate shapes are centred on the threshold.
struct Step : ActivationBase {
  static constexpr const char* name = "step";
  static constexpr bool elementary_forward = true;
  static constexpr const char* default_derivative = "atan";
  static constexpr std::array<ParamSpec, 1> params{{{"threshold", 0.0, Constraint::Finite}}};
  static double center(const Params<double>& p) { return p[0]; }
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>& p) {
    return math::select_or_zero(x > p[0], T(1));
  }
  template <class T>
  ARTDERIV_HD static T derivative(T, const Params<T>&) {
    return T(0);
  }
};

// torch.sign: -1, 0 or 1 (NaN -> 0, as torch.sign). Exact derivative 0.
struct Sign : ActivationBase {
  static constexpr const char* name = "sign";
  static constexpr bool elementary_forward = true;
  static constexpr const char* default_derivative = "atan";
  static constexpr std::array<ParamSpec, 0> params{};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>&) {
    return math::select(x > T(0), T(1), math::select_or_zero(x < T(0), T(-1)));
  }
  template <class T>
  ARTDERIV_HD static T derivative(T, const Params<T>&) {
    return T(0);
  }
};

// SUGAR (Horuz et al. 2025): B-SiLU(x) = (x + alpha) * sigma(x) - alpha/2.
struct BSilu : ActivationBase {
  static constexpr const char* name = "b_silu";
  static constexpr const char* default_derivative = "exact";
  static constexpr std::array<ParamSpec, 1> params{{{"alpha", 1.67, Constraint::Finite}}};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>& p) {
    return (x + p[0]) * logistic(x) - T(0.5) * p[0];
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>& p) {
    const T s = logistic(x);
    return s + (x + p[0]) * s * (T(1) - s);
  }
};

// SUGAR (Horuz et al. 2025): NeLU(x) = x for x > 0, -alpha / (1 + x^2) otherwise.
struct Nelu : ActivationBase {
  static constexpr const char* name = "nelu";
  static constexpr const char* default_derivative = "exact";
  static constexpr std::array<ParamSpec, 1> params{{{"alpha", 0.05, Constraint::Finite}}};
  template <class T>
  ARTDERIV_HD static T forward(T x, const Params<T>& p) {
    return math::select(x > T(0), x, math::neg(p[0]) / (T(1) + x * x));
  }
  template <class T>
  ARTDERIV_HD static T derivative(T x, const Params<T>& p) {
    const T u = T(1) + x * x;
    return math::select(x > T(0), T(1), T(2) * p[0] * x / (u * u));
  }
};

}  // namespace artderiv
