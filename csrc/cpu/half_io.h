// bfloat16 / float16 <-> float vectors for the half-type blocks of
// activation_kernels.h, which include this inside their per-ISA build (it
// needs CPU_CAPABILITY, like the file that includes it).
//
// One Vectorized<S> load widens into two float vectors, one store narrows two
// back, rounding once to nearest even: widening is exact and the narrowing is
// that of ATen's vectorised conversions, so the values are the same bits
// (a NaN narrows to 0xffff there, where c10's scalar conversion gives 0x7fc0).
#pragma once

#ifndef CPU_CAPABILITY
#error "half_io.h is part of the per-ISA kernel builds: include activation_kernels.h"
#endif

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

#include <ATen/cpu/vec/vec.h>

#include "lanes.h"

namespace artderiv {
namespace cpu {
namespace CPU_CAPABILITY {

using at::vec::Vectorized;

// widen: one Vectorized<S> -> two float vectors; narrow: the inverse. In
// array order, ATen's conversions (which round as torch does).
template <class S>
struct HalfConvert {
  using VF = Vectorized<float>;
  C10_ALWAYS_INLINE static std::pair<VF, VF> widen(const Vectorized<S>& v) {
    // std::tie, not a structured binding of convert_to_float's tuple: with
    // the binding, GCC 12 keeps a dead 64-byte stack store of each widened
    // vector in every loop that calls this.
    VF lo, hi;
    std::tie(lo, hi) = at::vec::convert_to_float<S>(v);
    return {lo, hi};
  }
  C10_ALWAYS_INLINE static Vectorized<S> narrow(const VF& lo, const VF& hi) {
    return at::vec::convert_from_float<S>(lo, hi);
  }
};

#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
// bfloat16 in lane order. ATen's convert_to_float<BFloat16> keeps the array
// order, which costs cross-lane shuffles (an extract and two vpmovzxwd per
// load, a vpermq per store). An element-wise formula does not need the order
// as long as the store undoes the load's: here each 128-bit lane of eight
// values widens its low four into `lo` and its high four into `hi` (one
// in-lane unpack each; a bfloat16 is the high half of its float), and
// vpackusdw packs them back per lane. Narrowing is ATen's cvtfp32_bf16
// without its final permute: round to nearest even, NaN -> 0xffff. On an AMD
// EPYC (AVX2), on data in L1 (benchmarks/block_loops.cpp), relu's bfloat16
// forward loop took 37% less time and sigmoid's 12%.
template <>
struct HalfConvert<at::BFloat16> {
  using VF = Vectorized<float>;
#if defined(CPU_CAPABILITY_AVX512)
  C10_ALWAYS_INLINE static std::pair<VF, VF> widen(const Vectorized<at::BFloat16>& v) {
    const __m512i zero = _mm512_setzero_si512();
    return {_mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, v)),
            _mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, v))};
  }
  C10_ALWAYS_INLINE static __m512i round(const VF& f) {
    const __m512i v = _mm512_castps_si512(f);
    __m512i t = _mm512_and_si512(_mm512_srli_epi32(v, 16), _mm512_set1_epi32(1));
    t = _mm512_add_epi32(_mm512_add_epi32(t, _mm512_set1_epi32(0x7fff)), v);
    t = _mm512_srli_epi32(t, 16);
    return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(f, f, _CMP_ORD_Q), _mm512_set1_epi32(0xffff), t);
  }
  C10_ALWAYS_INLINE static Vectorized<at::BFloat16> narrow(const VF& lo, const VF& hi) {
#if defined(__AVX512BF16__)
    // The AVX512BF16 build: one vcvtne2ps2bf16 rounds both vectors to nearest
    // even like round() (NaN to a quiet NaN, not 0xffff), but reads a
    // subnormal as zero (1.1754942e-38 would give 0, not FLT_MIN): a pair with
    // one takes round(). lo's 16 values come first, then hi's; the permute
    // puts them in the lane order of the pack above.
    const __mmask16 subnormal = _mm512_fpclass_ps_mask(lo, 0x20) | _mm512_fpclass_ps_mask(hi, 0x20);
    if (C10_LIKELY(subnormal == 0)) {
      const __m512i pair = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
      return _mm512_permutexvar_epi64(_mm512_set_epi64(7, 3, 6, 2, 5, 1, 4, 0), pair);
    }
#endif
    return _mm512_packus_epi32(round(lo), round(hi));
  }
#else
  C10_ALWAYS_INLINE static std::pair<VF, VF> widen(const Vectorized<at::BFloat16>& v) {
    const __m256i zero = _mm256_setzero_si256();
    return {_mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, v)),
            _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, v))};
  }
  C10_ALWAYS_INLINE static __m256i round(const VF& f) {
    const __m256i v = _mm256_castps_si256(f);
    __m256i t = _mm256_and_si256(_mm256_srli_epi32(v, 16), _mm256_set1_epi32(1));
    t = _mm256_add_epi32(_mm256_add_epi32(t, _mm256_set1_epi32(0x7fff)), v);
    t = _mm256_srli_epi32(t, 16);
    return _mm256_blendv_epi8(_mm256_set1_epi32(0xffff), t,
                              _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_ORD_Q)));
  }
  C10_ALWAYS_INLINE static Vectorized<at::BFloat16> narrow(const VF& lo, const VF& hi) {
    return _mm256_packus_epi32(round(lo), round(hi));
  }
#endif
};
#endif

// Loads and stores of kWidth 16-bit values as a pack of N float vectors
// (math::Lanes, lanes.h), two per Vectorized<S>, in the order of
// HalfConvert<S>. Whatever goes through a float buffer next to them (f' for
// a shape or a blend) is written and read back in that same order, as whole
// packs, also for a partial one (the lane order spreads its values over both
// halves): a float buffer must hold a multiple of kWidth values.
template <class S, int N>
struct HalfIO {
  static_assert(N % 2 == 0, "two float vectors per 16-bit vector");
  using VS = Vectorized<S>;
  using Floats = math::Lanes<Vectorized<float>, N>;
  static constexpr int64_t kVectors = N / 2;  // 16-bit vectors per pack
  static constexpr int64_t kWidth = kVectors * VS::size();

  // values of the pack's k-th 16-bit vector that lie within len
  C10_ALWAYS_INLINE static int64_t in_vector(int64_t len, int k) {
    return std::min<int64_t>(std::max<int64_t>(len - k * VS::size(), 0), VS::size());
  }
  C10_ALWAYS_INLINE static Floats load(const S* p, int64_t len) {
    Floats f;
    ARTDERIV_FOR_EACH_LANE(k, kVectors) {
      const int64_t count = in_vector(len, k);
      const VS v = count == VS::size() ? VS::loadu(p + k * VS::size())
                   : count > 0         ? VS::loadu(p + k * VS::size(), count)
                                       : VS(S(0));
      const auto wide = HalfConvert<S>::widen(v);
      f.v[2 * k] = wide.first;
      f.v[2 * k + 1] = wide.second;
    }
    return f;
  }
  C10_ALWAYS_INLINE static void store(S* p, const Floats& f, int64_t len) {
    ARTDERIV_FOR_EACH_LANE(k, kVectors) {
      const int64_t count = in_vector(len, k);
      const VS v = HalfConvert<S>::narrow(f.v[2 * k], f.v[2 * k + 1]);
      if (count == VS::size()) {
        v.store(p + k * VS::size());
      } else if (count > 0) {
        v.store(p + k * VS::size(), count);
      }
    }
  }
};

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace artderiv
