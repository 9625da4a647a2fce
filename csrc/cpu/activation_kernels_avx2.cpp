// The CPU kernels built for AVX2; compiler flags for this file: setup.py / CMakeLists.txt.
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#include "activation_kernels.h"

namespace artderiv {
namespace cpu {
constexpr KernelTable kernels_AVX2 = AVX2::make_kernel_table();
}  // namespace cpu
}  // namespace artderiv
