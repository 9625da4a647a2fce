// The CPU kernels built for DEFAULT; compiler flags for this file: setup.py / CMakeLists.txt.
#define CPU_CAPABILITY DEFAULT
#define CPU_CAPABILITY_DEFAULT
#include "activation_kernels.h"

namespace artderiv {
namespace cpu {
constexpr KernelTable kernels_DEFAULT = DEFAULT::make_kernel_table();
}  // namespace cpu
}  // namespace artderiv
