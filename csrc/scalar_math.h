// Scalar math primitives the formulas are written in.
//
// Every formula in formulas.h is a template over a value type T and calls only
// the functions below (plus + - * / and comparisons). Here T is a plain float or
// double, on the host and in CUDA device code; cpu/vec_math.h adds overloads
// for at::vec::Vectorized<T> and cpu/lanes.h for packs of them, so the same
// formula text is the CPU SIMD kernel.
// Include this header (and vec_math.h and lanes.h, where used) before formulas.h: the
// formulas use qualified calls, which only see overloads declared before them.
#pragma once

#include <cmath>

// Always inlined, also on the host: the CPU kernels are the formulas applied
// to packs of vectors, and a formula left out of line passes each pack
// through memory. GCC stops inlining plain `inline` functions once a
// translation unit has grown enough, and each per-ISA kernel file has (all
// activations and derivatives, four dtypes): logistic and Atan::eval became
// calls in the loops, and relu:sigmoid's bfloat16 backward took twice as long
// (benchmarks/RESULTS.md; tests/test_library_isa.py checks the loops).
#if defined(__CUDACC__) || defined(__HIPCC__)
#define ARTDERIV_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define ARTDERIV_HD inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define ARTDERIV_HD __forceinline
#else
#define ARTDERIV_HD inline
#endif

namespace artderiv {
namespace math {

// select(mask, a, b): a where mask holds, else b.
template <class T>
ARTDERIV_HD T select(bool mask, T a, T b) {
  return mask ? a : b;
}

ARTDERIV_HD float neg(float x) { return -x; }
ARTDERIV_HD double neg(double x) { return -x; }

ARTDERIV_HD float abs(float x) { return ::fabsf(x); }
ARTDERIV_HD double abs(double x) { return ::fabs(x); }

ARTDERIV_HD float exp(float x) { return ::expf(x); }
ARTDERIV_HD double exp(double x) { return ::exp(x); }

// 1 + e^x: the logistic's denominator (sigmoid, silu). A primitive of its own
// because it needs less range handling than exp: where e^x is tiny, 1 + e^x
// is 1 whatever e^x is, and where it overflows the sum is inf. The CPU's
// vector version (vec_math.h) skips exp's subnormal path and range selects
// and gives the bits of 1 + its vector exp (Sleef's).
ARTDERIV_HD float one_plus_exp(float x) { return 1.0f + ::expf(x); }
ARTDERIV_HD double one_plus_exp(double x) { return 1.0 + ::exp(x); }

ARTDERIV_HD float expm1(float x) { return ::expm1f(x); }
ARTDERIV_HD double expm1(double x) { return ::expm1(x); }

ARTDERIV_HD float log1p(float x) { return ::log1pf(x); }
ARTDERIV_HD double log1p(double x) { return ::log1p(x); }

ARTDERIV_HD float tanh(float x) { return ::tanhf(x); }
ARTDERIV_HD double tanh(double x) { return ::tanh(x); }

ARTDERIV_HD float erf(float x) { return ::erff(x); }
ARTDERIV_HD double erf(double x) { return ::erf(x); }

// select(mask, a, 0): on the CPU one AND with the mask, where GCC compiles
// select()'s blendv against a zero to three instructions.
template <class T>
ARTDERIV_HD T select_or_zero(bool mask, T a) {
  return mask ? a : T(0);
}

// x < lo ? lo : x and x > hi ? hi : x: a NaN x passes through, and -0.0
// stays -0.0 against 0, as torch.clamp_min / clamp_max / relu. On the CPU one
// max/min instruction each (at::vec::clamp_min), where select() takes three.
template <class T>
ARTDERIV_HD T clamp_min(T x, T lo) {
  return x < lo ? lo : x;
}
template <class T>
ARTDERIV_HD T clamp_max(T x, T hi) {
  return x > hi ? hi : x;
}

// Both masks hold (a comparison result each).
ARTDERIV_HD bool both(bool a, bool b) { return a && b; }

// grad * d, except that a zero factor blocks the gradient entirely (+0 even
// for an inf or NaN grad), as torch's threshold_backward / hardtanh_backward.
template <class T>
ARTDERIV_HD T gate(T grad, T d) {
  return d == T(0) ? T(0) : grad * d;
}

// NaN-propagating max/min (IEEE 754-2019 maximum/minimum), like
// at::vec::maximum and torch.maximum; std::fmax would drop the NaN.
template <class T>
ARTDERIV_HD T maximum(T a, T b) {
  return (a != a) ? a : ((b != b) ? b : (a > b ? a : b));
}
template <class T>
ARTDERIV_HD T minimum(T a, T b) {
  return (a != a) ? a : ((b != b) ? b : (a < b ? a : b));
}

}  // namespace math
}  // namespace artderiv
