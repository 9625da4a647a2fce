// CPU registration: hands the operands (flat chunks, or a TensorIterator) to
// the kernel table of the best instruction set this CPU (and
// ATEN_CPU_CAPABILITY) allows.
#include <ATen/Version.h>
#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>
#include <torch/library.h>
#if __has_include(<torch/csrc/stable/c/shim.h>)
#include <torch/csrc/stable/c/shim.h>  // torch_parallel_for
#endif

#include <atomic>
#include <cstdlib>
#include <exception>

#include "../ops.h"
#include "kernel_table.h"

namespace artderiv {
namespace cpu {
namespace {

const KernelTable& select_kernels() {
  // at::get_cpu_capability() is what ATen itself dispatches on: the best ISA
  // of this CPU, lowered by ATEN_CPU_CAPABILITY=default|avx2 when set.
  const std::string capability = at::get_cpu_capability();
#ifdef ARTDERIV_CPU_AVX512BF16
  // ATen has no build of its own for AVX512-BF16: its AVX512 CPUs that have
  // it run the build whose bfloat16 stores round in one instruction, unless
  // ARTDERIV_AVX512BF16=0 (to test or time the plain AVX512 build there).
  const char* bf16 = std::getenv("ARTDERIV_AVX512BF16");
  const bool bf16_allowed = bf16 == nullptr || std::string(bf16) != "0";
  if (capability == "AVX512" && bf16_allowed && __builtin_cpu_supports("avx512bf16")) return kernels_AVX512BF16;
#endif
#ifdef ARTDERIV_CPU_AVX512
  if (capability == "AVX512") return kernels_AVX512;
#endif
#ifdef ARTDERIV_CPU_AVX2
  if (capability == "AVX512" || capability == "AVX2") return kernels_AVX2;
#endif
  return kernels_DEFAULT;
}

const KernelTable& kernels() {
  static const KernelTable& table = select_kernels();
  return table;
}

// The table whose forward runs `act` on `dtype`. An elementary forward (relu,
// step: compares and selects) on float or double is bound by memory; there,
// on an AMD EPYC (Zen 4), the AVX512 loops took 2-7% longer than the AVX2
// ones (benchmarks/RESULTS.md, 2026-11-30), so AVX512 CPUs run it from the
// AVX2 build, as ATen runs its own elementwise ops (torch.relu's clamp_min
// among them). Half types widen and round in registers, which AVX512 does faster.
// (The AVX512BF16 build differs from AVX512 only in its bfloat16 stores.)
const KernelTable& forward_kernels(const ActivationSpec& act, at::ScalarType dtype) {
  const KernelTable& best = kernels();
#if defined(ARTDERIV_CPU_AVX512) && defined(ARTDERIV_CPU_AVX2)
  const bool avx512 = &best == &kernels_AVX512
#ifdef ARTDERIV_CPU_AVX512BF16
                      || &best == &kernels_AVX512BF16
#endif
      ;
  if (act.elementary_forward && !at::isReducedFloatingType(dtype) && avx512) return kernels_AVX2;
#endif
  return best;
}

// With an activation and a dtype: the build that runs that forward.
std::string cpu_kernel_isa(const std::optional<c10::string_view>& activation,
                           std::optional<at::ScalarType> dtype) {
  TORCH_CHECK_VALUE(activation.has_value() == dtype.has_value(),
                    "artderiv.cpu_kernel_isa: give both 'activation' and 'dtype', or neither");
  if (!activation) return kernels().isa;
  TORCH_CHECK_TYPE(is_kernel_dtype(*dtype), "artderiv.cpu_kernel_isa: argument 'dtype' is ", *dtype,
                   "; allowed: ", kKernelDtypeNames);
  return forward_kernels(resolve_activation(*activation, {}), *dtype).isa;
}

}  // namespace
}  // namespace cpu

namespace {

#if !defined(TORCH_VERSION_2_10_0) || TORCH_FEATURE_VERSION < TORCH_VERSION_2_10_0
#error "artderiv needs torch >= 2.10: it splits work with torch_parallel_for"
#endif

// f(begin, end) over [0, n), split as at::parallel_for splits it, by libtorch's
// own at::parallel_for behind torch's stable C function. The inline copy in
// ATen/Parallel.h is OpenMP code in torch's OpenMP builds: it would need
// -fopenmp here, from a compiler whose OpenMP calls torch's libgomp provides
// (GCC's, not clang's).
// An exception in f is rethrown here, message intact (the C function would
// turn it into an error code).
template <class F>
void parallel_for(int64_t n, const F& f) {
  struct Context {
    const F& f;
    std::exception_ptr error;
    std::atomic_flag failed = ATOMIC_FLAG_INIT;
  } context{f};
  const auto chunk = [](int64_t begin, int64_t end, void* ctx) {
    auto& c = *static_cast<Context*>(ctx);
    try {
      c.f(begin, end);
    } catch (...) {
      if (!c.failed.test_and_set()) c.error = std::current_exception();
    }
  };
  const AOTITorchError status = torch_parallel_for(0, n, at::internal::GRAIN_SIZE, chunk, &context);
  if (context.error) std::rethrow_exception(context.error);
  TORCH_CHECK(status == AOTI_TORCH_SUCCESS, "artderiv: torch_parallel_for failed (torch logs the reason)");
}

// All dense (no gaps, no overlap) with one set of strides: then each is a
// flat array in the same element order. y and grad_x come from empty_like,
// so this holds whenever x (and grad) are dense alike.
bool same_dense_layout(std::initializer_list<const at::Tensor*> ts) {
  const at::Tensor& first = **ts.begin();
  if (!first.is_non_overlapping_and_dense()) return false;
  for (const at::Tensor* t : ts) {
    if (t->sizes() != first.sizes() || t->strides() != first.strides()) return false;
  }
  return true;
}

// run(operands) on flat arrays, split over threads as TensorIterator's
// for_each would split them (only above one grain, into at most n / grain
// chunks), without building an iterator: that costs about a microsecond.
template <class Run>
void for_each_flat_chunk(const at::Tensor& out, std::initializer_list<const at::Tensor*> inputs,
                         const Run& run) {
  const int64_t elem = static_cast<int64_t>(out.element_size());
  char* base[3] = {static_cast<char*>(out.data_ptr()), nullptr, nullptr};
  int k = 1;
  for (const at::Tensor* t : inputs) base[k++] = static_cast<char*>(const_cast<void*>(t->const_data_ptr()));
  parallel_for(out.numel(), [&](int64_t begin, int64_t end) {
    cpu::Operands ops{nullptr, {}, end - begin, out.scalar_type()};
    for (int j = 0; j < k; ++j) ops.data[j] = base[j] + begin * elem;
    run(ops);
  });
}

}  // namespace

void activation_forward_cpu(at::Tensor& y, const at::Tensor& x, const ActivationSpec& act) {
  const cpu::KernelTable& kernels = cpu::forward_kernels(act, y.scalar_type());
  if (same_dense_layout({&y, &x})) {
    for_each_flat_chunk(y, {&x}, [&](const cpu::Operands& ops) { kernels.forward(ops, act); });
    return;
  }
  auto iter = at::TensorIteratorConfig().add_output(y).add_const_input(x).build();
  kernels.forward({&iter, {}, iter.numel(), iter.dtype()}, act);
}

void activation_backward_cpu(at::Tensor& grad_x, const at::Tensor& grad, const at::Tensor& saved,
                             SaveMode save, const ActivationSpec& act, const DerivativeSpec& deriv,
                             const std::optional<at::Tensor>& blend) {
  const double b = read_cpu_blend(act, blend);
  if (same_dense_layout({&grad_x, &grad, &saved})) {
    for_each_flat_chunk(grad_x, {&grad, &saved}, [&](const cpu::Operands& ops) {
      cpu::kernels().backward(ops, save, act, deriv, b);
    });
    return;
  }
  auto iter = at::TensorIteratorConfig()
                  .add_output(grad_x)
                  .add_const_input(grad)
                  .add_const_input(saved)
                  .build();
  cpu::kernels().backward({&iter, {}, iter.numel(), iter.dtype()}, save, act, deriv, b);
}

TORCH_LIBRARY_FRAGMENT(artderiv, m) {
  // Which CPU kernel build runs here (DEFAULT, AVX2, AVX512, AVX512BF16), or runs one
  // activation's forward on one dtype: for benchmarks and bug reports.
  m.def("cpu_kernel_isa(str? activation=None, ScalarType? dtype=None) -> str", &cpu::cpu_kernel_isa);
}

TORCH_LIBRARY_IMPL(artderiv, CPU, m) {
  m.impl("activation_forward", &forward_op<activation_forward_cpu>);
  m.impl("activation_backward", &backward_op<activation_backward_cpu>);
}

}  // namespace artderiv
