// Lanes<V, N>: N independent vectors that every operation applies to in
// turn, so that the formulas of formulas.h run on N vectors at once, one
// instruction of each in a row. Every function here is always inlined (see
// ARTDERIV_HD in scalar_math.h): a call would pass the pack through memory.
//
// Why: an exp-based formula is a chain of about 25 dependent instructions a
// vector. Written one vector at a time, the CPU's scheduler fills with the
// waiting tail of that chain and overlaps only two or three vectors; with
// the instructions of four vectors interleaved it has four ready at every
// step. On an AMD EPYC (AVX2), relu's sigmoid-derivative backward loop on
// data in L1 took about 22% less time with packs of four than one vector at
// a time (a standalone loop of its instructions: 28%; benchmarks/RESULTS.md).
// Unrolling the loop does not do it: GCC keeps each vector's instructions
// together, and two or four per loop iteration that way ran as fast as one.
// Every lane computes exactly what one Vectorized would: the same operations
// in the same order, so the values are the same bits.
//
// Include after vec_math.h (the per-lane functions) and before formulas.h:
// the formulas' qualified math:: calls only see overloads declared before them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include <ATen/cpu/vec/vec.h>

#include "vec_math.h"

namespace artderiv {
namespace math {

template <class V, int N>
struct Lanes {
  using value_type = typename V::value_type;
  static constexpr int64_t size() { return N * V::size(); }

  V v[N];
  Lanes() = default;
  C10_ALWAYS_INLINE explicit Lanes(const V& x) {
    ARTDERIV_FOR_EACH_LANE(k, N) v[k] = x;
  }
  template <class S, std::enable_if_t<std::is_arithmetic_v<S>, int> = 0>
  C10_ALWAYS_INLINE explicit Lanes(S s) : Lanes(V(static_cast<value_type>(s))) {}

  // values of the pack's k-th vector that lie within its first len
  C10_ALWAYS_INLINE static int64_t in_lane(int64_t len, int k) {
    return std::min<int64_t>(std::max<int64_t>(len - k * V::size(), 0), V::size());
  }
  // len values from p, the lanes past them zero (a partial pack: the tail)
  C10_ALWAYS_INLINE static Lanes loadu(const value_type* p, int64_t len = size()) {
    Lanes r;
    ARTDERIV_FOR_EACH_LANE(k, N) {
      const int64_t count = in_lane(len, k);
      r.v[k] = count > 0 ? V::loadu(p + k * V::size(), count) : V(value_type(0));
    }
    return r;
  }
  C10_ALWAYS_INLINE void store(value_type* p, int64_t len = size()) const {
    ARTDERIV_FOR_EACH_LANE(k, N) {
      const int64_t count = in_lane(len, k);
      if (count > 0) v[k].store(p + k * V::size(), count);
    }
  }

#define ARTDERIV_LANES_OPERATOR(op)                                              \
  C10_ALWAYS_INLINE friend Lanes operator op(const Lanes& a, const Lanes& b) { \
    Lanes r;                                                                   \
    ARTDERIV_FOR_EACH_LANE(k, N) r.v[k] = a.v[k] op b.v[k];                    \
    return r;                                                                  \
  }
  ARTDERIV_LANES_OPERATOR(+)
  ARTDERIV_LANES_OPERATOR(-)
  ARTDERIV_LANES_OPERATOR(*)
  ARTDERIV_LANES_OPERATOR(/)
  ARTDERIV_LANES_OPERATOR(&)
  // comparisons: all-ones bit masks per value, as Vectorized's
  ARTDERIV_LANES_OPERATOR(<)
  ARTDERIV_LANES_OPERATOR(<=)
  ARTDERIV_LANES_OPERATOR(>)
  ARTDERIV_LANES_OPERATOR(>=)
  ARTDERIV_LANES_OPERATOR(==)
  ARTDERIV_LANES_OPERATOR(!=)
#undef ARTDERIV_LANES_OPERATOR
};

// The math primitives, lane by lane (qualified calls: no argument-dependent
// lookup into at::vec, whose maximum / clamp_min are other functions).
#define ARTDERIV_LANEWISE(fn, params, args)                   \
  template <class V, int N>                                   \
  C10_ALWAYS_INLINE Lanes<V, N> fn params {                   \
    Lanes<V, N> r;                                            \
    ARTDERIV_FOR_EACH_LANE(k, N) r.v[k] = ::artderiv::math::fn args; \
    return r;                                                 \
  }
#define ARTDERIV_L const Lanes<V, N>&
ARTDERIV_LANEWISE(select, (ARTDERIV_L m, ARTDERIV_L a, ARTDERIV_L b), (m.v[k], a.v[k], b.v[k]))
ARTDERIV_LANEWISE(select_or_zero, (ARTDERIV_L m, ARTDERIV_L a), (m.v[k], a.v[k]))
ARTDERIV_LANEWISE(clamp_min, (ARTDERIV_L x, ARTDERIV_L lo), (x.v[k], lo.v[k]))
ARTDERIV_LANEWISE(clamp_max, (ARTDERIV_L x, ARTDERIV_L hi), (x.v[k], hi.v[k]))
ARTDERIV_LANEWISE(neg, (ARTDERIV_L x), (x.v[k]))
ARTDERIV_LANEWISE(abs, (ARTDERIV_L x), (x.v[k]))
ARTDERIV_LANEWISE(expm1, (ARTDERIV_L x), (x.v[k]))
ARTDERIV_LANEWISE(log1p, (ARTDERIV_L x), (x.v[k]))
ARTDERIV_LANEWISE(tanh, (ARTDERIV_L x), (x.v[k]))
ARTDERIV_LANEWISE(erf, (ARTDERIV_L x), (x.v[k]))
ARTDERIV_LANEWISE(gate, (ARTDERIV_L grad, ARTDERIV_L d), (grad.v[k], d.v[k]))
ARTDERIV_LANEWISE(both, (ARTDERIV_L a, ARTDERIV_L b), (a.v[k], b.v[k]))
ARTDERIV_LANEWISE(maximum, (ARTDERIV_L a, ARTDERIV_L b), (a.v[k], b.v[k]))
ARTDERIV_LANEWISE(minimum, (ARTDERIV_L a, ARTDERIV_L b), (a.v[k], b.v[k]))
// exp and one_plus_exp lane by lane where vec_math.h has no inline version
// (double: Sleef, an out-of-line call each; the DEFAULT build: ATen's); the
// inline float exp of the AVX2/AVX512 builds below interleaves its own steps.
ARTDERIV_LANEWISE(exp, (ARTDERIV_L x), (x.v[k]))
ARTDERIV_LANEWISE(one_plus_exp, (ARTDERIV_L x), (x.v[k]))
#undef ARTDERIV_L
#undef ARTDERIV_LANEWISE

#ifdef ARTDERIV_INLINE_VEC_EXP
namespace detail {
namespace CPU_CAPABILITY {
template <int N>
using FloatLanes = Lanes<at::vec::Vectorized<float>, N>;

// kFn(in, out) of vec_math.h, which works on the lanes' raw float vectors
template <int N, void (*kFn)(const FloatBits*, FloatBits*)>
C10_ALWAYS_INLINE FloatLanes<N> on_float_bits(const FloatLanes<N>& x) {
  FloatBits in[N], out[N];
  ARTDERIV_FOR_EACH_LANE(k, N) in[k] = x.v[k];
  kFn(in, out);
  FloatLanes<N> r;
  ARTDERIV_FOR_EACH_LANE(k, N) r.v[k] = out[k];
  return r;
}
}  // namespace CPU_CAPABILITY
}  // namespace detail

template <int N>
C10_ALWAYS_INLINE Lanes<at::vec::Vectorized<float>, N> exp(const Lanes<at::vec::Vectorized<float>, N>& x) {
  using namespace detail::CPU_CAPABILITY;
  return on_float_bits<N, &exp_lanes<N>>(x);
}

template <int N>
C10_ALWAYS_INLINE Lanes<at::vec::Vectorized<float>, N> one_plus_exp(
    const Lanes<at::vec::Vectorized<float>, N>& x) {
  using namespace detail::CPU_CAPABILITY;
  return on_float_bits<N, &one_plus_exp_lanes<N>>(x);
}
#endif

}  // namespace math

}  // namespace artderiv
