// The CPU kernels built for AVX512; compiler flags for this file: setup.py / CMakeLists.txt.
#define CPU_CAPABILITY AVX512
#define CPU_CAPABILITY_AVX512
#include "activation_kernels.h"

namespace artderiv {
namespace cpu {
constexpr KernelTable kernels_AVX512 = AVX512::make_kernel_table();
}  // namespace cpu
}  // namespace artderiv
