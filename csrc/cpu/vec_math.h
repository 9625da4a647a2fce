// at::vec::Vectorized overloads of the artderiv::math primitives, so the
// formulas of formulas.h compile to SIMD code. Include after scalar_math.h and
// before formulas.h. Comparisons on Vectorized return all-ones bit masks,
// which select() feeds to blendv. Everything here is always inlined, as the
// formulas are (ARTDERIV_HD in scalar_math.h says why).
#pragma once

#include <ATen/cpu/vec/vec.h>

#include "../scalar_math.h"

// Runs a statement for k = 0..n-1, unrolled: GCC keeps the source order, so
// the n vectors' instructions interleave (Lanes, lanes.h).
#define ARTDERIV_FOR_EACH_LANE(k, n) _Pragma("GCC unroll 16") for (int k = 0; k < (n); ++k)

namespace artderiv {
namespace math {

template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> select(const at::vec::Vectorized<T>& mask,
                                                const at::vec::Vectorized<T>& a,
                                                const at::vec::Vectorized<T>& b) {
  return at::vec::Vectorized<T>::blendv(b, a, mask);
}

// Comparison masks are all ones or all zeros per lane.
template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> select_or_zero(const at::vec::Vectorized<T>& mask,
                                                        const at::vec::Vectorized<T>& a) {
  return mask & a;
}

// maxps(lo, x) returns x when either is NaN or they are equal: x < lo ? lo : x.
template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> clamp_min(const at::vec::Vectorized<T>& x,
                                                   const at::vec::Vectorized<T>& lo) {
  return at::vec::clamp_min(x, lo);
}

template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> clamp_max(const at::vec::Vectorized<T>& x,
                                                   const at::vec::Vectorized<T>& hi) {
  return at::vec::clamp_max(x, hi);
}

template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> neg(const at::vec::Vectorized<T>& x) {
  return x.neg();
}

template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> abs(const at::vec::Vectorized<T>& x) {
  return x.abs();
}

template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> exp(const at::vec::Vectorized<T>& x) {
  return x.exp();
}

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
#define ARTDERIV_INLINE_VEC_EXP 1
// exp of float vectors: the algorithm of Sleef's expf_u10 (what
// Vectorized<float>::exp calls, so torch.exp and torch.sigmoid use it too),
// written inline. A call to Sleef makes the loop spill its live vectors around
// it; inline, the exp-based ops stream 2^24 bfloat16 values in about 0.75-0.8
// of the time (benchmarks/RESULTS.md). The results are bit for bit Sleef's,
// NaN payloads included (tests/test_vec_exp.py).
//
// The helpers live in a namespace per ISA, as at::vec's do: set1(float) would
// otherwise have the same mangled name in the AVX2 and AVX512 builds, and a
// copy that is not inlined could be linked into the other build.
namespace detail {
namespace CPU_CAPABILITY {
#if defined(CPU_CAPABILITY_AVX512)
using FloatBits = __m512;
using IntBits = __m512i;
C10_ALWAYS_INLINE FloatBits set1(float v) { return _mm512_set1_ps(v); }
C10_ALWAYS_INLINE FloatBits fma(FloatBits a, FloatBits b, FloatBits c) {
  return _mm512_fmadd_ps(a, b, c);
}
C10_ALWAYS_INLINE FloatBits mul(FloatBits a, FloatBits b) { return _mm512_mul_ps(a, b); }
C10_ALWAYS_INLINE FloatBits add(FloatBits a, FloatBits b) { return _mm512_add_ps(a, b); }
// to nearest even
C10_ALWAYS_INLINE IntBits round_to_int(FloatBits a) { return _mm512_cvtps_epi32(a); }
C10_ALWAYS_INLINE FloatBits to_float(IntBits q) { return _mm512_cvtepi32_ps(q); }
// 2^q for q in the normal exponent range, built in the exponent field
C10_ALWAYS_INLINE FloatBits pow2i(IntBits q) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(q, _mm512_set1_epi32(0x7f)), 23));
}
C10_ALWAYS_INLINE IntBits half(IntBits q) { return _mm512_srai_epi32(q, 1); }
C10_ALWAYS_INLINE IntBits set1i(int v) { return _mm512_set1_epi32(v); }
C10_ALWAYS_INLINE IntBits sub(IntBits a, IntBits b) { return _mm512_sub_epi32(a, b); }
// 0 where x < lo (false for NaN), +inf where x > hi, else u
C10_ALWAYS_INLINE FloatBits clamp_range(FloatBits x, FloatBits u, float lo, float hi) {
  u = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, set1(lo), _CMP_NLT_UQ), u);
  return _mm512_mask_mov_ps(u, _mm512_cmp_ps_mask(set1(hi), x, _CMP_LT_OQ), set1(INFINITY));
}
// x into [lo, hi]; maxps/minps return their second operand, x, for a NaN x
C10_ALWAYS_INLINE FloatBits clamp(FloatBits x, float lo, float hi) {
  return _mm512_min_ps(set1(hi), _mm512_max_ps(set1(lo), x));
}
#else
using FloatBits = __m256;
using IntBits = __m256i;
C10_ALWAYS_INLINE FloatBits set1(float v) { return _mm256_set1_ps(v); }
C10_ALWAYS_INLINE FloatBits fma(FloatBits a, FloatBits b, FloatBits c) {
  return _mm256_fmadd_ps(a, b, c);
}
C10_ALWAYS_INLINE FloatBits mul(FloatBits a, FloatBits b) { return _mm256_mul_ps(a, b); }
C10_ALWAYS_INLINE FloatBits add(FloatBits a, FloatBits b) { return _mm256_add_ps(a, b); }
C10_ALWAYS_INLINE IntBits round_to_int(FloatBits a) { return _mm256_cvtps_epi32(a); }
C10_ALWAYS_INLINE FloatBits to_float(IntBits q) { return _mm256_cvtepi32_ps(q); }
C10_ALWAYS_INLINE FloatBits pow2i(IntBits q) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(q, _mm256_set1_epi32(0x7f)), 23));
}
C10_ALWAYS_INLINE IntBits half(IntBits q) { return _mm256_srai_epi32(q, 1); }
C10_ALWAYS_INLINE IntBits set1i(int v) { return _mm256_set1_epi32(v); }
C10_ALWAYS_INLINE IntBits sub(IntBits a, IntBits b) { return _mm256_sub_epi32(a, b); }
C10_ALWAYS_INLINE FloatBits clamp_range(FloatBits x, FloatBits u, float lo, float hi) {
  u = _mm256_andnot_ps(_mm256_cmp_ps(x, set1(lo), _CMP_LT_OQ), u);
  return _mm256_blendv_ps(u, set1(INFINITY), _mm256_cmp_ps(set1(hi), x, _CMP_LT_OQ));
}
C10_ALWAYS_INLINE FloatBits clamp(FloatBits x, float lo, float hi) {
  return _mm256_min_ps(set1(hi), _mm256_max_ps(set1(lo), x));
}
#endif

// Sleef's reduction and polynomial: x = q ln2 + s, |s| <= ln2/2 (ln2 split in
// two for an exact q ln2); e^s = 1 + s + s^2 P(s) into exp_s, and q. For N
// independent vectors at once, one step of all of them after another
// (Lanes, lanes.h); N = 1 is the plain Vectorized overload.
template <int N>
C10_ALWAYS_INLINE void exp_parts(const FloatBits* x, FloatBits* exp_s, IntBits* q) {
  FloatBits s[N], u[N];
  ARTDERIV_FOR_EACH_LANE(k, N) {
    q[k] = round_to_int(mul(x[k], set1(1.442695040888963407359924681001892137426645954152985934135449406931f)));
  }
  ARTDERIV_FOR_EACH_LANE(k, N) {
    const FloatBits qf = to_float(q[k]);
    s[k] = fma(qf, set1(-0.693145751953125f), x[k]);
    s[k] = fma(qf, set1(-1.428606765330187045e-06f), s[k]);
  }
  ARTDERIV_FOR_EACH_LANE(k, N) u[k] = fma(set1(0.000198527617612853646278381f), s[k], set1(0.00139304355252534151077271f));
  ARTDERIV_FOR_EACH_LANE(k, N) u[k] = fma(u[k], s[k], set1(0.00833336077630519866943359f));
  ARTDERIV_FOR_EACH_LANE(k, N) u[k] = fma(u[k], s[k], set1(0.0416664853692054748535156f));
  ARTDERIV_FOR_EACH_LANE(k, N) u[k] = fma(u[k], s[k], set1(0.166666671633720397949219f));
  ARTDERIV_FOR_EACH_LANE(k, N) u[k] = fma(u[k], s[k], set1(0.5f));
  ARTDERIV_FOR_EACH_LANE(k, N) exp_s[k] = add(set1(1.0f), fma(mul(s[k], s[k]), u[k], s[k]));
}

// e^x of N vectors
template <int N>
C10_ALWAYS_INLINE void exp_lanes(const FloatBits* x, FloatBits* out) {
  FloatBits u[N];
  IntBits q[N];
  exp_parts<N>(x, u, q);
  // times 2^q in two steps, so that q down to -150 still gives subnormals and
  // q = 128 (x in [88.38, 88.72)) finite values: 2^128 alone is inf
  ARTDERIV_FOR_EACH_LANE(k, N) {
    const IntBits h = half(q[k]);
    out[k] = clamp_range(x[k], mul(mul(u[k], pow2i(h)), pow2i(sub(q[k], h))), -104.0f, 100.0f);
  }
}

// 1 + e^x of N vectors, with the bits of 1 + exp(x) above (vec_exp_check.cpp),
// in fewer instructions: x is clamped to [-32, 89] first, which changes no
// result: below -32, e^x < 2^-46 and 1 + e^x rounds to 1 either way; from
// 88.73 up, e^x overflows to inf either way. In that range q is in [-46, 128],
// so 2^(q-1) is a normal number and e^s 2^(q-1), doubled, is exp's two-step
// product (both exact, or both overflow), without exp's range selects.
template <int N>
C10_ALWAYS_INLINE void one_plus_exp_lanes(const FloatBits* x, FloatBits* out) {
  FloatBits clamped[N], u[N];
  IntBits q[N];
  ARTDERIV_FOR_EACH_LANE(k, N) clamped[k] = clamp(x[k], -32.0f, 89.0f);
  exp_parts<N>(clamped, u, q);
  // 2e + 1, rounded once: as 1 + (e + e), whose doubling is exact (or inf, as here)
  ARTDERIV_FOR_EACH_LANE(k, N) out[k] = fma(mul(u[k], pow2i(sub(q[k], set1i(1)))), set1(2.0f), set1(1.0f));
}
}  // namespace CPU_CAPABILITY
}  // namespace detail

C10_ALWAYS_INLINE at::vec::Vectorized<float> exp(const at::vec::Vectorized<float>& vx) {
  const detail::CPU_CAPABILITY::FloatBits x = vx;
  detail::CPU_CAPABILITY::FloatBits r;
  detail::CPU_CAPABILITY::exp_lanes<1>(&x, &r);
  return r;
}

C10_ALWAYS_INLINE at::vec::Vectorized<float> one_plus_exp(const at::vec::Vectorized<float>& vx) {
  const detail::CPU_CAPABILITY::FloatBits x = vx;
  detail::CPU_CAPABILITY::FloatBits r;
  detail::CPU_CAPABILITY::one_plus_exp_lanes<1>(&x, &r);
  return r;
}
#endif

template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> one_plus_exp(const at::vec::Vectorized<T>& x) {
  return at::vec::Vectorized<T>(T(1)) + x.exp();
}

template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> expm1(const at::vec::Vectorized<T>& x) {
  return x.expm1();
}

template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> log1p(const at::vec::Vectorized<T>& x) {
  return x.log1p();
}

template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> tanh(const at::vec::Vectorized<T>& x) {
  return x.tanh();
}

template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> erf(const at::vec::Vectorized<T>& x) {
  return x.erf();
}

// d != 0 is true for a NaN d, as the scalar gate's d == 0 is false. A mask
// and an AND: blendv against a zero costs a third instruction (GCC rebuilds
// the mask from its sign bits).
template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> gate(const at::vec::Vectorized<T>& grad,
                                              const at::vec::Vectorized<T>& d) {
  using V = at::vec::Vectorized<T>;
  return select_or_zero(d != V(T(0)), grad * d);
}

template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> both(const at::vec::Vectorized<T>& a,
                                              const at::vec::Vectorized<T>& b) {
  return a & b;
}

template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> maximum(const at::vec::Vectorized<T>& a,
                                                 const at::vec::Vectorized<T>& b) {
  return at::vec::maximum(a, b);
}

template <class T>
C10_ALWAYS_INLINE at::vec::Vectorized<T> minimum(const at::vec::Vectorized<T>& a,
                                                 const at::vec::Vectorized<T>& b) {
  return at::vec::minimum(a, b);
}

}  // namespace math
}  // namespace artderiv
