// What every formula shares: the parameter block, parameter metadata, and the
// base structs whose defaults a formula overrides only where it differs.
#pragma once

#include <array>
#include <cstdint>

#include "../scalar_math.h"

namespace artderiv {

// Parameters travel by value into every kernel (CUDA kernel arguments, no
// device memory). The largest user is `table`: knots and values.
constexpr int kMaxTableKnots = 16;
constexpr int kMaxParams = 2 * kMaxTableKnots;

template <class T>
struct Params {
  T v[kMaxParams];
  int count;  // values in use
  ARTDERIV_HD const T& operator[](int i) const { return v[i]; }
};

// What a parameter may be; every parameter must also be finite.
enum class Constraint : uint8_t { Finite, Positive, NonNegative, NonZero };

struct ParamSpec {
  const char* name;
  double default_value;
  Constraint constraint;
};

// Logistic sigma(x) = 1 / (1 + exp(-x)), as in ATen's CPU and CUDA sigmoid.
template <class T>
ARTDERIV_HD T logistic(T x) {
  return T(1) / math::one_plus_exp(math::neg(x));
}

struct ActivationBase {
  // Where the surrogate shapes are centred: x - center goes into them
  // (the threshold of `step`; 0 for every other activation).
  static double center(const Params<double>&) { return 0.0; }
  // Checks that involve several parameters; nullptr when fine.
  static const char* check(const Params<double>&) { return nullptr; }
  // True when f'(x) follows from y = f(x) alone: the activation then defines
  // derivative_from_output(y, p), and save="output" can keep y instead of x
  // (what torch does for sigmoid and tanh: no exp in the backward).
  static constexpr bool has_output_derivative = false;
  // True when torch's own backward of this activation is grad * f'(x), no
  // select (sigmoid, tanh, elu, ...): an inf or NaN gradient times a saturated
  // f' = 0 is NaN there, and artderiv's "exact" derivative gives the same.
  // False keeps the gate of every other backward: a factor of 0 gives +0 for
  // any gradient, as torch's relu, hardtanh and hardsigmoid backwards select.
  static constexpr bool product_backward = false;
  // True when the forward is only compares, selects and multiplies (relu,
  // step, ...): its float loop is bound by memory, not by the formula.
  static constexpr bool elementary_forward = false;
};

struct DerivativeBase {
  static constexpr bool uses_exact = false;  // eval reads f'(x)
  static constexpr bool uses_input = true;   // eval reads x (false: f'(x) only, save="output" works)
  static constexpr bool variadic = false;    // any number of parameters (table)
  static const char* check(const Params<double>&) { return nullptr; }
};

}  // namespace artderiv
