// csrc/cuda/activation_kernels.cuh compiled as host C++ and run on the CPU:
// each launch runs its blocks and threads one after another (the kernels share
// nothing between threads, so any order is a valid schedule). This tests the
// CUDA code's indexing (16-byte vectors, unrolling, tails, grid-stride loops),
// its dispatch and argument passing, on machines without a GPU. The formulas
// themselves are shared with the CPU kernels and tested there.
//
// Outputs are written into a buffer with sentinel margins at a chosen
// misalignment, so a write outside the output or an element never written is
// seen (tests/test_cuda_emulation.py).
#include <cstring>

#include <torch/extension.h>

#include "ops.h"

// CUDA's keywords and built-in variables, for host compilation. Defined after
// every library header: GCC's own headers use __noinline__ as an attribute.
#define __global__
#define __device__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __grid_constant__
struct EmulatedDim3 {
  unsigned x = 0, y = 0, z = 0;
};
inline EmulatedDim3 blockIdx, threadIdx, gridDim, blockDim;

#include "cuda/activation_kernels.cuh"

namespace artderiv {
namespace {

struct Settings {
  int sm_count = 132;     // the H200's
  int output_offset = 0;  // elements past a 16-byte boundary where outputs start
  int64_t launches = 0;
  int64_t last_blocks = 0;
};
Settings settings;

// All-ones bytes: NaN in every floating dtype, so an element never written
// differs from any expected value (the tests' inputs give no NaN).
constexpr unsigned char kSentinel = 0xFF;
constexpr int64_t kMarginBytes = 64;

struct EmulatedDevice {
  struct Guard {
    explicit Guard(const at::Tensor&) {}
  };
  static int sm_count(const at::Tensor&) { return settings.sm_count; }
  static bool holds(const at::Tensor& t) { return t.is_cpu(); }  // the "device" is the CPU

  template <class... Params, class... Args>
  static void launch(void (*kernel)(Params...), int blocks, Args... args) {
    TORCH_CHECK(blocks >= 1, "emulated launch with ", blocks, " blocks");
    ++settings.launches;
    settings.last_blocks = blocks;
    gridDim = {static_cast<unsigned>(blocks), 1, 1};
    blockDim = {cuda::kThreads, 1, 1};
    for (int b = 0; b < blocks; ++b) {
      for (int t = 0; t < cuda::kThreads; ++t) {
        blockIdx = {static_cast<unsigned>(b), 0, 0};
        threadIdx = {static_cast<unsigned>(t), 0, 0};
        kernel(args...);
      }
    }
  }
};

// `out`'s layout inside a byte buffer: margins on both sides and untouched
// elements hold kSentinel; `finish` checks the margins and copies into `out`.
class GuardedOutput {
 public:
  explicit GuardedOutput(const at::Tensor& out) : out_(out) {
    const int64_t item = out.element_size();
    offset_bytes_ = kMarginBytes + settings.output_offset * item;
    // empty_like outputs are dense: they span exactly numel elements.
    buffer_ = at::empty({offset_bytes_ + out.numel() * item + kMarginBytes}, out.options().dtype(at::kByte));
    std::memset(buffer_.data_ptr(), kSentinel, buffer_.numel());
    view_ = at::from_blob(static_cast<char*>(buffer_.data_ptr()) + offset_bytes_, out.sizes(),
                          out.strides(), out.options());
  }
  at::Tensor& view() { return view_; }
  void finish() {
    const auto* bytes = static_cast<const unsigned char*>(buffer_.data_ptr());
    const int64_t end = offset_bytes_ + out_.numel() * out_.element_size();
    const auto check_margin = [&](int64_t from, int64_t to) {
      for (int64_t i = from; i < to; ++i) {
        TORCH_CHECK(bytes[i] == kSentinel, "emulated kernel wrote outside its output: byte ",
                    i - offset_bytes_, " of ", end - offset_bytes_);
      }
    };
    check_margin(0, offset_bytes_);
    check_margin(end, buffer_.numel());
    out_.copy_(view_);
  }

 private:
  at::Tensor out_, buffer_, view_;
  int64_t offset_bytes_ = 0;
};

void forward_emulated(at::Tensor& y, const at::Tensor& x, const ActivationSpec& act) {
  GuardedOutput out(y);
  cuda::activation_forward<EmulatedDevice>(out.view(), x, act);
  out.finish();
}

void backward_emulated(at::Tensor& grad_x, const at::Tensor& grad, const at::Tensor& saved, SaveMode save,
                       const ActivationSpec& act, const DerivativeSpec& deriv,
                       const std::optional<at::Tensor>& blend) {
  GuardedOutput out(grad_x);
  cuda::activation_backward<EmulatedDevice>(out.view(), grad, saved, save, act, deriv, blend);
  out.finish();
}

}  // namespace
}  // namespace artderiv

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using namespace artderiv;
  m.doc() = "csrc/cuda/activation_kernels.cuh run on the CPU (test only)";
  // Same arguments as torch.ops.artderiv.activation_forward / activation_backward.
  m.def("activation_forward",
        [](const at::Tensor& x, const std::string& activation, const std::vector<double>& params) {
          return forward_op<forward_emulated>(x, activation, params);
        });
  m.def("activation_backward",
        [](const at::Tensor& grad, const at::Tensor& saved, const std::string& save,
           const std::string& activation, const std::vector<double>& activation_params,
           const std::string& derivative, const std::vector<double>& derivative_params,
           const std::optional<at::Tensor>& blend) {
          return backward_op<backward_emulated>(grad, saved, save, activation, activation_params,
                                                derivative, derivative_params, blend);
        });
  m.def("configure", [](int sm_count, int output_offset) {
    TORCH_CHECK(sm_count >= 1 && output_offset >= 0, "configure: sm_count >= 1, output_offset >= 0");
    settings.sm_count = sm_count;
    settings.output_offset = output_offset;
  });
  // (launches so far, blocks of the last launch): lets a test see the grid it ran.
  m.def("launch_stats", [] { return std::make_pair(settings.launches, settings.last_blocks); });
  // Checks the checker: a write one element past an output must be reported.
  m.def("self_test_stray_write", [] {
    GuardedOutput out(at::empty({5}));
    out.view().data_ptr<float>()[5] = 1.0f;
    out.finish();
  });
  m.attr("threads_per_block") = cuda::kThreads;
  m.attr("unroll") = cuda::kUnroll;
  m.attr("vector_bytes") = cuda::kVectorBytes;
}
