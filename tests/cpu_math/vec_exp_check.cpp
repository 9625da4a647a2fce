// Compares artderiv::math::exp on Vectorized<float> (csrc/cpu/vec_math.h)
// with Vectorized<float>::exp (Sleef's expf_u10, what ATen uses) bit for bit,
// and artderiv::math::one_plus_exp with 1 + Sleef's exp (the logistic's
// denominator, as ATen's sigmoid and silu compute it); both also on four
// vectors at once (math::Lanes, csrc/cpu/lanes.h, the kernels' value type),
// whose interleaved steps must give each lane the same bits.
// Built per ISA by tests/test_vec_exp.py with the kernel files' flags and
// CPU_CAPABILITY macros.
//
//   vec_exp_check STRIDE   every STRIDE-th float bit pattern, plus every float
//                          with |x| in [64, 128) (where exp over- and underflows)
// Prints the number of floats compared (each through both functions) and of
// mismatches; exits 1 on any mismatch, 2 if the inline exp is not compiled in
// for this ISA.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cpu/vec_math.h"
#include "cpu/lanes.h"

using Vec = at::vec::Vectorized<float>;
using Pack = artderiv::math::Lanes<Vec, 4>;

static uint64_t compared = 0, mismatches = 0;

static void compare(const char* what, const float* x, const uint32_t* bits, const Vec& mine_v,
                    const Vec& sleef_v) {
  float mine[Vec::size()], sleef[Vec::size()];
  mine_v.store(mine);
  sleef_v.store(sleef);
  for (int i = 0; i < Vec::size(); ++i) {
    if (std::memcmp(&mine[i], &sleef[i], sizeof(float)) != 0 && mismatches++ < 10) {
      std::printf("mismatch: %s(%a) [bits %08" PRIx32 "]: inline %a, Sleef %a\n", what, x[i], bits[i],
                  mine[i], sleef[i]);
    }
  }
}

// Pack::size() values: each vector alone, then the four as one pack
static void check(const uint32_t* bits) {
  float x[Pack::size()];
  std::memcpy(x, bits, sizeof(x));
  const Pack pack = Pack::loadu(x);
  const Pack exp_pack = artderiv::math::exp(pack);
  const Pack one_plus_exp_pack = artderiv::math::one_plus_exp(pack);
  compared += Pack::size();
  for (int k = 0; k < 4; ++k) {
    const float* xk = x + k * Vec::size();
    const uint32_t* bk = bits + k * Vec::size();
    const Vec v = pack.v[k];
    compare("exp", xk, bk, artderiv::math::exp(v), v.exp());
    compare("one_plus_exp", xk, bk, artderiv::math::one_plus_exp(v), Vec(1.0f) + v.exp());
    compare("exp (4 lanes)", xk, bk, exp_pack.v[k], v.exp());
    compare("one_plus_exp (4 lanes)", xk, bk, one_plus_exp_pack.v[k], Vec(1.0f) + v.exp());
  }
}

int main(int argc, char** argv) {
#ifndef ARTDERIV_INLINE_VEC_EXP
  std::printf("inline vector exp not compiled for this ISA\n");
  return 2;
#endif
  const uint64_t stride = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 61;
  uint32_t bits[Pack::size()];
  int k = 0;
  auto add = [&](uint32_t b) {
    bits[k++] = b;
    if (k == Pack::size()) {
      check(bits);
      k = 0;
    }
  };
  for (uint64_t b = 0; b < (uint64_t(1) << 32); b += stride) add(uint32_t(b));
  for (uint32_t sign : {0u, 0x80000000u}) {  // |x| in [64, 128): exponent field 133
    for (uint32_t m = 0; m < (1u << 23); ++m) add(sign | (133u << 23) | m);
  }
  while (k != 0) add(0x7fc00001u);  // fill the last vector with a NaN
  std::printf("compared %" PRIu64 " floats, %" PRIu64 " mismatches (exp and one_plus_exp of each, alone and in a pack)\n", compared,
              mismatches);
  return mismatches == 0 ? 0 : 1;
}
