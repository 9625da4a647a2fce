// at::vec::Vectorized overloads of the artderiv::math primitives, so the
// formulas of formulas.h compile to SIMD code. Include after scalar_math.h and
// before formulas.h. Comparisons on Vectorized return all-ones bit masks,
// which select() feeds to blendv.
#pragma once

#include <ATen/cpu/vec/vec.h>

#include "../scalar_math.h"

namespace artderiv {
namespace math {

template <class T>
inline at::vec::Vectorized<T> select(const at::vec::Vectorized<T>& mask,
                                     const at::vec::Vectorized<T>& a,
                                     const at::vec::Vectorized<T>& b) {
  return at::vec::Vectorized<T>::blendv(b, a, mask);
}

template <class T>
inline at::vec::Vectorized<T> neg(const at::vec::Vectorized<T>& x) {
  return x.neg();
}

template <class T>
inline at::vec::Vectorized<T> abs(const at::vec::Vectorized<T>& x) {
  return x.abs();
}

template <class T>
inline at::vec::Vectorized<T> exp(const at::vec::Vectorized<T>& x) {
  return x.exp();
}

template <class T>
inline at::vec::Vectorized<T> expm1(const at::vec::Vectorized<T>& x) {
  return x.expm1();
}

template <class T>
inline at::vec::Vectorized<T> log1p(const at::vec::Vectorized<T>& x) {
  return x.log1p();
}

template <class T>
inline at::vec::Vectorized<T> tanh(const at::vec::Vectorized<T>& x) {
  return x.tanh();
}

template <class T>
inline at::vec::Vectorized<T> erf(const at::vec::Vectorized<T>& x) {
  return x.erf();
}

template <class T>
inline at::vec::Vectorized<T> gate(const at::vec::Vectorized<T>& grad,
                                   const at::vec::Vectorized<T>& d) {
  using V = at::vec::Vectorized<T>;
  return V::blendv(grad * d, V(T(0)), d == V(T(0)));
}

template <class T>
inline at::vec::Vectorized<T> both(const at::vec::Vectorized<T>& a,
                                   const at::vec::Vectorized<T>& b) {
  return a & b;
}

template <class T>
inline at::vec::Vectorized<T> maximum(const at::vec::Vectorized<T>& a,
                                      const at::vec::Vectorized<T>& b) {
  return at::vec::maximum(a, b);
}

template <class T>
inline at::vec::Vectorized<T> minimum(const at::vec::Vectorized<T>& a,
                                      const at::vec::Vectorized<T>& b) {
  return at::vec::minimum(a, b);
}

}  // namespace math
}  // namespace artderiv
