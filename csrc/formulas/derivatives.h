// Derivative shapes: eval(x, exact, p) is the factor the backward multiplies
// into the incoming gradient. x is the activation's input minus its center
// (the threshold of `step`, else 0); exact is the activation's f'(x) at the
// input itself (for like:<g>: g'(x - center), a surrogate like the others),
// read only when uses_exact is true. Parameter names and defaults follow the
// library each shape comes from, so the numbers agree for the same parameters.
#pragma once

#include <cmath>
#include <limits>

#include "common.h"

namespace artderiv {

struct Exact : DerivativeBase {
  static constexpr const char* name = "exact";
  static constexpr const char* formula = "f'(x)";
  static constexpr const char* source = "the activation's true derivative (PyTorch's convention at kinks)";
  static constexpr bool uses_exact = true;
  static constexpr bool uses_input = false;
  static constexpr std::array<ParamSpec, 0> params{};
  template <class T>
  ARTDERIV_HD static T eval(T, T exact, const Params<T>&) {
    return exact;
  }
};

struct SigmoidRamp : DerivativeBase {
  static constexpr const char* name = "sigmoid";
  static constexpr const char* formula = "sigma(beta*x)";
  static constexpr const char* source = "Hu, Zhang & Ge, IEEE Access 2021 (artificial derivative of ReLU)";
  static constexpr std::array<ParamSpec, 1> params{{{"beta", 1.0, Constraint::Positive}}};
  template <class T>
  ARTDERIV_HD static T eval(T x, T, const Params<T>& p) {
    return logistic(p[0] * x);
  }
};

struct ExactPlus : DerivativeBase {
  static constexpr const char* name = "exact_plus";
  static constexpr const char* formula = "f'(x) + c";
  static constexpr const char* source = "Roodschild, Gotay Sardinas & Will, 2020";
  static constexpr bool uses_exact = true;
  static constexpr bool uses_input = false;
  static constexpr std::array<ParamSpec, 1> params{{{"c", 0.05, Constraint::NonNegative}}};
  template <class T>
  ARTDERIV_HD static T eval(T, T exact, const Params<T>& p) {
    return exact + p[0];
  }
};

struct Floor : DerivativeBase {
  static constexpr const char* name = "floor";
  static constexpr const char* formula = "max(f'(x), eps)";
  static constexpr const char* source =
      "ProxyGrad-style leaky derivative (for ReLU: the leaky-ReLU derivative)";
  static constexpr bool uses_exact = true;
  static constexpr bool uses_input = false;
  static constexpr std::array<ParamSpec, 1> params{{{"eps", 0.01, Constraint::NonNegative}}};
  template <class T>
  ARTDERIV_HD static T eval(T, T exact, const Params<T>& p) {
    return math::maximum(exact, p[0]);
  }
};

struct SigmoidPrime : DerivativeBase {
  static constexpr const char* name = "sigmoid_prime";
  static constexpr const char* formula = "alpha*sigma(alpha*x)*(1 - sigma(alpha*x))";
  static constexpr const char* source = "SpikingJelly Sigmoid, snnTorch sigmoid(slope=alpha)";
  static constexpr std::array<ParamSpec, 1> params{{{"alpha", 4.0, Constraint::Positive}}};
  template <class T>
  ARTDERIV_HD static T eval(T x, T, const Params<T>& p) {
    const T s = logistic(p[0] * x);
    return p[0] * s * (T(1) - s);
  }
};

struct Atan : DerivativeBase {
  static constexpr const char* name = "atan";
  static constexpr const char* formula = "(alpha/2) / (1 + (pi*alpha*x/2)^2)";
  static constexpr const char* source = "snnTorch atan, SpikingJelly ATan";
  static constexpr std::array<ParamSpec, 1> params{{{"alpha", 2.0, Constraint::Positive}}};
  template <class T>
  ARTDERIV_HD static T eval(T x, T, const Params<T>& p) {
    const T u = T(1.5707963267948966) * p[0] * x;  // pi/2 * alpha * x
    return (T(0.5) * p[0]) / (T(1) + u * u);
  }
};

struct FastSigmoid : DerivativeBase {
  static constexpr const char* name = "fast_sigmoid";
  static constexpr const char* formula = "1 / (1 + slope*|x|)^2";
  static constexpr const char* source = "snnTorch fast_sigmoid, SuperSpike (Zenke & Ganguli 2018)";
  static constexpr std::array<ParamSpec, 1> params{{{"slope", 25.0, Constraint::Positive}}};
  template <class T>
  ARTDERIV_HD static T eval(T x, T, const Params<T>& p) {
    const T u = T(1) + p[0] * math::abs(x);
    return T(1) / (u * u);
  }
};

struct Erf : DerivativeBase {
  static constexpr const char* name = "erf";
  static constexpr const char* formula = "alpha/sqrt(pi) * exp(-(alpha*x)^2)";
  static constexpr const char* source = "SpikingJelly Erf";
  static constexpr std::array<ParamSpec, 1> params{{{"alpha", 2.0, Constraint::Positive}}};
  template <class T>
  ARTDERIV_HD static T eval(T x, T, const Params<T>& p) {
    const T u = p[0] * x;
    return p[0] * T(0.56418958354775628695) * math::exp(math::neg(u * u));  // 1/sqrt(pi)
  }
};

struct Triangle : DerivativeBase {
  static constexpr const char* name = "triangle";
  static constexpr const char* formula = "alpha * max(0, 1 - alpha*|x|)";
  static constexpr const char* source = "SpikingJelly PiecewiseQuadratic";
  static constexpr std::array<ParamSpec, 1> params{{{"alpha", 1.0, Constraint::Positive}}};
  template <class T>
  ARTDERIV_HD static T eval(T x, T, const Params<T>& p) {
    return p[0] * math::maximum(T(1) - p[0] * math::abs(x), T(0));
  }
};

struct Rectangle : DerivativeBase {
  static constexpr const char* name = "rectangle";
  static constexpr const char* formula = "alpha where |x| < 1/(2*alpha), else 0";
  static constexpr const char* source = "SpikingJelly Rect (boxcar straight-through estimator)";
  static constexpr std::array<ParamSpec, 1> params{{{"alpha", 1.0, Constraint::Positive}}};
  template <class T>
  ARTDERIV_HD static T eval(T x, T, const Params<T>& p) {
    return math::select_or_zero(math::abs(x) < T(0.5) / p[0], p[0]);
  }
};

struct Softsign : DerivativeBase {
  static constexpr const char* name = "softsign";
  static constexpr const char* formula = "alpha / (2*(1 + alpha*|x|)^2)";
  static constexpr const char* source = "SpikingJelly SoftSign";
  static constexpr std::array<ParamSpec, 1> params{{{"alpha", 2.0, Constraint::Positive}}};
  template <class T>
  ARTDERIV_HD static T eval(T x, T, const Params<T>& p) {
    const T u = T(1) + p[0] * math::abs(x);
    return p[0] / (T(2) * u * u);
  }
};

struct Exponential : DerivativeBase {
  static constexpr const char* name = "exponential";
  static constexpr const char* formula = "(alpha/2) * exp(-alpha*|x|)";
  static constexpr const char* source = "SpikingJelly PiecewiseExp";
  static constexpr std::array<ParamSpec, 1> params{{{"alpha", 1.0, Constraint::Positive}}};
  template <class T>
  ARTDERIV_HD static T eval(T x, T, const Params<T>& p) {
    return T(0.5) * p[0] * math::exp(math::neg(p[0] * math::abs(x)));
  }
};

struct PiecewiseLeaky : DerivativeBase {
  static constexpr const char* name = "piecewise_leaky";
  static constexpr const char* formula = "1/(2w) where |x| < w, else c";
  static constexpr const char* source = "SpikingJelly PiecewiseLeakyReLU";
  static constexpr std::array<ParamSpec, 2> params{
      {{"w", 1.0, Constraint::Positive}, {"c", 0.01, Constraint::NonNegative}}};
  template <class T>
  ARTDERIV_HD static T eval(T x, T, const Params<T>& p) {
    return math::select(math::abs(x) < p[0], T(0.5) / p[0], p[1]);
  }
};

struct Gaussian : DerivativeBase {
  static constexpr const char* name = "gaussian";
  static constexpr const char* formula = "N(x; 0, sigma) = exp(-x^2/(2 sigma^2)) / (sigma*sqrt(2 pi))";
  static constexpr const char* source = "Gaussian surrogate (e.g. Yin et al. 2021)";
  static constexpr std::array<ParamSpec, 1> params{{{"sigma", 0.5, Constraint::Positive}}};
  template <class T>
  ARTDERIV_HD static T eval(T x, T, const Params<T>& p) {
    const T u = x / p[0];
    return T(0.39894228040143267794) / p[0] * math::exp(T(-0.5) * u * u);
  }
};

struct Identity : DerivativeBase {
  static constexpr const char* name = "identity";
  static constexpr const char* formula = "1";
  static constexpr const char* source = "straight-through estimator (Bengio et al. 2013)";
  static constexpr bool uses_input = false;
  static constexpr std::array<ParamSpec, 0> params{};
  template <class T>
  ARTDERIV_HD static T eval(T, T, const Params<T>&) {
    return T(1);
  }
};

// Any shape: knots k_0 < ... < k_{n-1} and values v_0..v_{n-1}, given as one
// list [k..., v...]; linear between knots, constant outside. Written as
// v_0 + sum_i slope_i * clamp(x - k_i, 0, k_{i+1} - k_i): branch-free, so it
// vectorises, and NaN propagates.
struct Table : DerivativeBase {
  static constexpr const char* name = "table";
  static constexpr const char* formula = "linear interpolation of (knots, values), constant outside";
  static constexpr const char* source = "user-defined";
  static constexpr bool variadic = true;
  static constexpr std::array<ParamSpec, 0> params{};
  static const char* check(const Params<double>& p) {
    const int n = p.count / 2;
    if (p.count % 2 != 0 || n < 2 || n > kMaxTableKnots) {
      return "takes knots then values: an even count of 4 to 32 numbers (2 to 16 knots)";
    }
    // eval runs in float for float32, float16 and bfloat16 tensors: the values
    // must be finite there, and knots that round to one float would make a
    // slope of inf (inf * 0 = NaN).
    const float most = std::numeric_limits<float>::max();
    for (int i = 0; i < p.count; ++i) {
      if (!(std::fabs(p[i]) <= static_cast<double>(most))) {
        return i < n ? "knots must be finite, also as a float32 (magnitude at most 3.4e38)"
                     : "values must be finite, also as a float32 (magnitude at most 3.4e38)";
      }
    }
    for (int i = 0; i + 1 < n; ++i) {
      if (!(p[i] < p[i + 1])) return "knots must be strictly increasing";
      const float width = static_cast<float>(p[i + 1]) - static_cast<float>(p[i]);
      const float rise = static_cast<float>(p[n + i + 1]) - static_cast<float>(p[n + i]);
      if (!(width > 0.0f && width <= most) || !(std::fabs(rise / width) <= most)) {
        return "knots must stay strictly increasing in float32, at most 3.4e38 apart, "
               "with slopes finite in float32";
      }
    }
    return nullptr;
  }
  template <class T>
  ARTDERIV_HD static T eval(T x, T, const Params<T>& p) {
    const int n = p.count / 2;
    T y = p[n];
    for (int i = 0; i + 1 < n; ++i) {
      const T width = p[i + 1] - p[i];
      const T slope = (p[n + i + 1] - p[n + i]) / width;
      y = y + slope * math::minimum(math::maximum(x - p[i], T(0)), width);
    }
    // Exactly the last value beyond the last knot (the sum above rounds).
    return math::select(x >= p[n - 1], p[2 * n - 1], y);
  }
};

}  // namespace artderiv
