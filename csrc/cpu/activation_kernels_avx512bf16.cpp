// The CPU kernels built for AVX512 CPUs with AVX512-BF16 (Cooper Lake, Sapphire
// Rapids, Zen 4): the AVX512 build, but its bfloat16 stores round with
// vcvtne2ps2bf16 (half_io.h). Compiler flags: setup.py / CMakeLists.txt. Its
// own CPU_CAPABILITY name keeps all its inline code (ATen's vector types and
// ours) apart from the AVX512 build's, which AVX512 CPUs without BF16 run.
#define CPU_CAPABILITY AVX512BF16
#define CPU_CAPABILITY_AVX512
#include "activation_kernels.h"

namespace artderiv {
namespace cpu {
constexpr KernelTable kernels_AVX512BF16 = AVX512BF16::make_kernel_table();
}  // namespace cpu
}  // namespace artderiv
