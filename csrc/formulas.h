// The one definition of every activation and every derivative shape.
//
//   formulas/activations.h   forward f(x) and exact derivative f'(x)
//   formulas/derivatives.h   the backward's factor eval(x, f'(x), params)
//
// The formulas are templates over T, written only with + - * /, comparisons
// and the artderiv::math functions, so the same text compiles to
//   - scalar float/double code in the CUDA kernels (scalar_math.h),
//   - at::vec::Vectorized<float/double> code in the CPU kernels, on packs of
//     several vectors at once (cpu/vec_math.h, cpu/lanes.h).
// Half and bfloat16 tensors are computed in float (T = float) and rounded once.
//
// Adding an activation or a derivative: write its struct in one of the two
// files and add one line to ARTDERIV_ACTIVATIONS or ARTDERIV_DERIVATIVES
// below. Kernels, catalog, checks, Python API and docs follow from these.
// (`like:<activation>`, the exact derivative of another activation, needs no
// struct: it is the `exact` shape reading another activation's f'.)
#pragma once

#include "formulas/activations.h"
#include "formulas/derivatives.h"

namespace artderiv {

// _(EnumName, Struct)
#define ARTDERIV_ACTIVATIONS(_) \
  _(relu, Relu)                 \
  _(relu6, Relu6)               \
  _(leaky_relu, LeakyRelu)      \
  _(elu, Elu)                   \
  _(selu, Selu)                 \
  _(celu, Celu)                 \
  _(softplus, Softplus)         \
  _(sigmoid, Sigmoid)           \
  _(hardsigmoid, Hardsigmoid)   \
  _(tanh, Tanh)                 \
  _(hardtanh, Hardtanh)         \
  _(silu, Silu)                 \
  _(hardswish, Hardswish)       \
  _(gelu, Gelu)                 \
  _(gelu_tanh, GeluTanh)        \
  _(mish, Mish)                 \
  _(step, Step)                 \
  _(sign, Sign)                 \
  _(b_silu, BSilu)              \
  _(nelu, Nelu)

#define ARTDERIV_DERIVATIVES(_)    \
  _(exact, Exact)                  \
  _(sigmoid, SigmoidRamp)          \
  _(exact_plus, ExactPlus)         \
  _(floor, Floor)                  \
  _(sigmoid_prime, SigmoidPrime)   \
  _(atan, Atan)                    \
  _(fast_sigmoid, FastSigmoid)     \
  _(erf, Erf)                      \
  _(triangle, Triangle)            \
  _(rectangle, Rectangle)          \
  _(softsign, Softsign)            \
  _(exponential, Exponential)      \
  _(piecewise_leaky, PiecewiseLeaky) \
  _(gaussian, Gaussian)            \
  _(identity, Identity)            \
  _(table, Table)

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
