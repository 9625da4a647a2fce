// Launch shapes for the memory-bound CUDA kernels, measured on the GPU.
//
// The library's kernels (csrc/cuda/activation_kernels.cuh: a grid-stride
// loop, 256 threads, 2 vectors of 16 bytes a thread, the grid capped at 32
// blocks per SM) reached 91% of the copy bandwidth in the forward on an H200,
// where torch's elementwise kernels (no loop: 128 threads, one block per 1024
// values) reach 100%. This program launches the same kernels (unary_kernel,
// backward_kernel, with their template parameters for the shape) in other
// shapes, next to the library's own launch and cudaMemcpy, so one GPU run says
// which shape to take:
//   library          the library's kernel and grid (blocks_for)
//   stride T/U xW    grid-stride loop, T threads, U vectors a thread, the grid
//                    W times the blocks that fit on the GPU at once
//   oneshot T/U      no loop: one block for each T*U vectors (torch's shape is
//                    oneshot 128/2 for float32 and 128/1 for bfloat16)
//   ..., no blend    (backward) BackwardOp<D, T, false>: the blending path,
//                    and its out-of-line f' calls, compiled out
//   ..., f' inlined  (backward) the activation fixed at compile time, its f'
//                    inlined (InlineExactSource) instead of the out-of-line
//                    call with its switch over the activations
// Every variant's output is compared bit for bit with the library launch's. An
// inlined f' may round differently (nvcc may fuse f' with the shape's own
// multiply or add into one FMA), so those variants may differ by rounding
// (2 bfloat16 ulps, or 1e-5 relative in float32), not more.
//
// Build and run (the last stage of benchmarks/gpu_check.sh does both):
//   nvcc -O3 -std=c++20 -gencode=arch=compute_90,code=sm_90 -Icsrc \
//        -I<torch>/include -I<torch>/include/torch/csrc/api/include \
//        <torch.utils.cpp_extension.COMMON_NVCC_FLAGS, as the library's build> \
//        benchmarks/cuda_launch_sweep.cu -o cuda_launch_sweep
//   ./cuda_launch_sweep [log2(n), default 28] [rounds, default 7]
// One case at a time (its buffers freed after it), it prints each variant's
// bit-for-bit check, then the case's rows of a markdown table: median time over
// the rounds (each round times 5 launches between CUDA events; the variants and
// a cudaMemcpy of the same size interleaved, order rotated), GB/s of the bytes
// that must move, and % of the cudaMemcpy's rate. A variant that fails to
// launch is reported and left out of the timing.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/activation_kernels.cuh"

namespace artderiv {
namespace cuda {
namespace sweep {

#define SWEEP_CHECK(expr)                                                              \
  do {                                                                                 \
    cudaError_t err_ = (expr);                                                         \
    if (err_ != cudaSuccess) {                                                         \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #expr,                \
                   cudaGetErrorString(err_));                                          \
      std::exit(2);                                                                    \
    }                                                                                  \
  } while (0)

__global__ void count_mismatches(const uint16_t* a, const uint16_t* b, int64_t n, unsigned long long* count) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (a[i] != b[i]) atomicAdd(count, 1ull);
  }
}

// Values of a and b further apart than rtol of the larger magnitude (NaN on one
// side only counts too): the check of variants that may round differently.
template <class T>
__global__ void count_far(const T* a, const T* b, int64_t n, float rtol, unsigned long long* count) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float x = static_cast<float>(a[i]), y = static_cast<float>(b[i]);
    if (x == y || (x != x && y != y)) continue;
    if (!(fabsf(x - y) <= rtol * fmaxf(fabsf(x), fabsf(y)))) atomicAdd(count, 1ull);
  }
}

struct Variant {
  std::string name;
  int threads = 0, vecs = 0, grid = 0, regs = 0, blocks_per_sm = 0;
  std::function<void()> launch;
  std::vector<float> ms;      // per round, per launch
  unsigned long long mismatches = 0;
  std::string may_differ;     // why its values may round differently from the library's ("": they may not)
  unsigned long long far = 0;  // values further apart than rounding (counted where may_differ)
  std::string error;          // the launch failed: not timed
};

struct Case {
  std::string name;
  size_t elem_size = 0;
  int streams = 0;  // tensors read + written (2 forward, 3 backward)
  std::vector<Variant> variants;
  void* out_library = nullptr;
  void* out_variant = nullptr;
  std::vector<void*> buffers;  // every device allocation of the case, freed after it
};

int g_sms = 0;

// A variant of `blocks` blocks, or (waves > 0) of at most `waves` times the
// blocks that fit on the GPU at once.
template <class Kernel>
Variant make_variant(std::string name, Kernel* kernel, int threads, int vecs, int64_t blocks, int waves,
                     std::function<void(int)> launch_with_grid) {
  Variant v;
  v.name = std::move(name);
  v.threads = threads;
  v.vecs = vecs;
  cudaFuncAttributes attr{};
  SWEEP_CHECK(cudaFuncGetAttributes(&attr, kernel));
  v.regs = attr.numRegs;
  SWEEP_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&v.blocks_per_sm, kernel, threads, 0));
  if (waves > 0) blocks = std::min<int64_t>(blocks, static_cast<int64_t>(g_sms) * v.blocks_per_sm * waves);
  v.grid = static_cast<int>(blocks);
  const int grid = v.grid;
  v.launch = [launch_with_grid, grid] { launch_with_grid(grid); };
  return v;
}

// The shapes tried for one functor; each variant writes `out`.
template <class scalar_t, class Op, bool kBackward>
void add_shapes(Case& c, const scalar_t* grad, const scalar_t* x, scalar_t* out, int64_t n, const Op& op) {
  const int64_t nvec = n / (kVectorBytes / sizeof(scalar_t));  // n is a power of two: no scalar tail
  const auto blocks = [nvec](int threads, int vecs) { return (nvec + threads * vecs - 1) / (threads * vecs); };
  // Waves = 0: one block for each T*U vectors (GridStride must be false then).
#define SWEEP_SHAPE(NAME, T, U, GRID_STRIDE, WAVES)                                                             \
  if constexpr (kBackward) {                                                                                    \
    c.variants.push_back(make_variant(NAME, &backward_kernel<scalar_t, Op, T, U, GRID_STRIDE>, T, U,           \
                                      blocks(T, U), WAVES, [=](int grid) {                                      \
                                        backward_kernel<scalar_t, Op, T, U, GRID_STRIDE>                        \
                                            <<<grid, T>>>(grad, 1, x, out, n, true, op);                        \
                                      }));                                                                      \
  } else {                                                                                                      \
    c.variants.push_back(make_variant(NAME, &unary_kernel<scalar_t, Op, T, U, GRID_STRIDE>, T, U, blocks(T, U), \
                                      WAVES, [=](int grid) {                                                    \
                                        unary_kernel<scalar_t, Op, T, U, GRID_STRIDE>                           \
                                            <<<grid, T>>>(x, out, n, true, op);                                 \
                                      }));                                                                      \
  }
  SWEEP_SHAPE("oneshot 128/1", 128, 1, false, 0)
  SWEEP_SHAPE("oneshot 128/2", 128, 2, false, 0)
  SWEEP_SHAPE("oneshot 128/4", 128, 4, false, 0)
  SWEEP_SHAPE("oneshot 256/2", 256, 2, false, 0)
  SWEEP_SHAPE("stride 256/2 x1", 256, 2, true, 1)
  SWEEP_SHAPE("stride 256/4 x1", 256, 4, true, 1)
  SWEEP_SHAPE("stride 128/2 x4", 128, 2, true, 4)
#undef SWEEP_SHAPE
}

// f' of A inlined into the kernel: what BackwardOp's out-of-line f' calls
// (argument moves, the switch over the activations, the return) cost. Right
// only where act == exact_of == A with the same parameters, as in every case
// here.
template <class A>
struct InlineExactSource {
  template <class T>
  __device__ __forceinline__ static T of_input(Act, T x, const Params<T>* p) {
    return A::derivative(x, *p);
  }
  template <class T>
  __device__ __forceinline__ static T of_output(Act, T y, const Params<T>* p) {
    if constexpr (A::has_output_derivative) {
      return A::derivative_from_output(y, *p);
    } else {
      return T(0);
    }
  }
};

template <class D>
Params<double> default_params() {
  Params<double> p{};
  int count = 0;
  for (const ParamSpec& spec : D::params) p.v[count++] = spec.default_value;
  p.count = count;
  return p;
}

template <class scalar_t>
scalar_t* device_buffer(Case& c, int64_t n, unsigned seed) {
  // Values in [-8, 8): both sides of every kink, the logistic unsaturated.
  std::vector<scalar_t> host(static_cast<size_t>(std::min<int64_t>(n, 1 << 20)));
  unsigned s = seed;
  for (auto& v : host) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<scalar_t>(static_cast<float>(s >> 8) / float(1 << 24) * 16.0f - 8.0f);
  }
  scalar_t* d = nullptr;
  SWEEP_CHECK(cudaMalloc(&d, n * sizeof(scalar_t)));
  c.buffers.push_back(d);
  for (int64_t off = 0; off < n; off += static_cast<int64_t>(host.size())) {
    const int64_t len = std::min<int64_t>(static_cast<int64_t>(host.size()), n - off);
    SWEEP_CHECK(cudaMemcpy(d + off, host.data(), len * sizeof(scalar_t), cudaMemcpyHostToDevice));
  }
  return d;
}

// A case's two outputs: the library launch's, and the one every variant writes.
template <class scalar_t>
Case new_case(const char* name, int streams, int64_t n) {
  Case c;
  c.name = name;
  c.elem_size = sizeof(scalar_t);
  c.streams = streams;
  SWEEP_CHECK(cudaMalloc(&c.out_library, n * sizeof(scalar_t)));
  SWEEP_CHECK(cudaMalloc(&c.out_variant, n * sizeof(scalar_t)));
  c.buffers = {c.out_library, c.out_variant};
  return c;
}

template <class scalar_t, class A>
Case forward_case(const char* name, int64_t n) {
  using opmath_t = at::opmath_type<scalar_t>;
  Case c = new_case<scalar_t>(name, 2, n);
  scalar_t* x = device_buffer<scalar_t>(c, n, 1);
  auto* lib_out = static_cast<scalar_t*>(c.out_library);
  auto* out = static_cast<scalar_t*>(c.out_variant);
  using Op = ForwardOp<A, scalar_t>;
  const Op op{cast_params<opmath_t>(default_params<A>())};
  const int blocks = blocks_for(n, kVectorBytes / sizeof(scalar_t), g_sms);
  c.variants.push_back(make_variant("library", &unary_kernel<scalar_t, Op>, kThreads, kUnroll, blocks, 0, [=](int) {
    unary_kernel<scalar_t, Op><<<blocks, kThreads>>>(x, lib_out, n, true, op);
  }));
  add_shapes<scalar_t, Op, false>(c, nullptr, x, out, n, op);
  return c;
}

// act:deriv backward with the derivative's default parameters, reading x
// (from_output: reading the saved output y, as save="auto" does for sigmoid).
template <class scalar_t, class A, class D>
Case backward_case(const char* name, int64_t n, bool from_output) {
  using opmath_t = at::opmath_type<scalar_t>;
  Case c = new_case<scalar_t>(name, 3, n);
  scalar_t* grad = device_buffer<scalar_t>(c, n, 2);
  scalar_t* x = device_buffer<scalar_t>(c, n, 3);
  auto* lib_out = static_cast<scalar_t*>(c.out_library);
  auto* out = static_cast<scalar_t*>(c.out_variant);
  BackwardArgs<opmath_t> args{};
  // A's Act entry (formulas.h keeps no map from struct to entry).
#define SWEEP_FIND_ACT(name_, Struct) \
  if (std::is_same_v<A, Struct>) args.act = Act::name_;
  ARTDERIV_ACTIVATIONS(SWEEP_FIND_ACT)
#undef SWEEP_FIND_ACT
  args.act_params = cast_params<opmath_t>(default_params<A>());
  args.exact_of = args.act;
  args.exact_of_params = args.act_params;
  args.deriv_params = cast_params<opmath_t>(default_params<D>());
  args.from_output = from_output;
  args.center = static_cast<opmath_t>(A::center(default_params<A>()));
  using Op = BackwardOp<D, scalar_t>;
  const Op op{args};
  const int blocks = blocks_for(n, kVectorBytes / sizeof(scalar_t), g_sms);
  c.variants.push_back(make_variant("library", &backward_kernel<scalar_t, Op>, kThreads, kUnroll, blocks, 0,
                                    [=](int) {
                                      backward_kernel<scalar_t, Op>
                                          <<<blocks, kThreads>>>(grad, 1, x, lib_out, n, true, op);
                                    }));
  add_shapes<scalar_t, Op, true>(c, grad, x, out, n, op);
  // The blending path's out-of-line f' calls cost registers in every backward
  // kernel, used or not: the library's shape and torch's without it.
  using Unblended = BackwardOp<D, scalar_t, false>;
  const Unblended unblended{args};
  const int64_t nvec = n / (kVectorBytes / sizeof(scalar_t));
  c.variants.push_back(make_variant("library, no blend path", &backward_kernel<scalar_t, Unblended>, kThreads,
                                    kUnroll, blocks, 0, [=](int) {
                                      backward_kernel<scalar_t, Unblended>
                                          <<<blocks, kThreads>>>(grad, 1, x, out, n, true, unblended);
                                    }));
  c.variants.push_back(make_variant("oneshot 128/1, no blend path",
                                    &backward_kernel<scalar_t, Unblended, 128, 1, false>, 128, 1,
                                    (nvec + 127) / 128, 0, [=](int grid) {
                                      backward_kernel<scalar_t, Unblended, 128, 1, false>
                                          <<<grid, 128>>>(grad, 1, x, out, n, true, unblended);
                                    }));
  // The same two launches with f' inlined.
  const char* fused = "f' inlined: FMA contraction";
  using Inlined = BackwardOp<D, scalar_t, true, InlineExactSource<A>>;
  const Inlined inlined{args};
  c.variants.push_back(make_variant("library, f' inlined", &backward_kernel<scalar_t, Inlined>, kThreads, kUnroll,
                                    blocks, 0, [=](int) {
                                      backward_kernel<scalar_t, Inlined>
                                          <<<blocks, kThreads>>>(grad, 1, x, out, n, true, inlined);
                                    }));
  c.variants.back().may_differ = fused;
  using InlinedUnblended = BackwardOp<D, scalar_t, false, InlineExactSource<A>>;
  const InlinedUnblended inlined_unblended{args};
  c.variants.push_back(make_variant("oneshot 128/1, f' inlined, no blend path",
                                    &backward_kernel<scalar_t, InlinedUnblended, 128, 1, false>, 128, 1,
                                    (nvec + 127) / 128, 0, [=](int grid) {
                                      backward_kernel<scalar_t, InlinedUnblended, 128, 1, false>
                                          <<<grid, 128>>>(grad, 1, x, out, n, true, inlined_unblended);
                                    }));
  c.variants.back().may_differ = fused;
  return c;
}

float time_launches(const std::function<void()>& launch, cudaEvent_t start, cudaEvent_t stop, int reps) {
  launch();  // warm-up
  SWEEP_CHECK(cudaEventRecord(start));
  for (int r = 0; r < reps; ++r) launch();
  SWEEP_CHECK(cudaEventRecord(stop));
  SWEEP_CHECK(cudaEventSynchronize(stop));
  SWEEP_CHECK(cudaGetLastError());
  float ms = 0;
  SWEEP_CHECK(cudaEventElapsedTime(&ms, start, stop));
  return ms / reps;
}

float median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.f : v[v.size() / 2];
}

// Launches v and waits: the error, or "" when it ran.
std::string run_once(const Variant& v) {
  v.launch();
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  return err == cudaSuccess ? std::string() : std::string(cudaGetErrorString(err));
}

// Every variant's output against the library launch's (variants[0]), bit for bit.
void check_case(Case& c, int64_t n, unsigned long long* count) {
  c.variants[0].error = run_once(c.variants[0]);
  for (size_t v = 1; v < c.variants.size(); ++v) {
    Variant& var = c.variants[v];
    SWEEP_CHECK(cudaMemset(c.out_variant, 0xff, n * c.elem_size));  // a NaN pattern: unwritten values differ
    var.error = run_once(var);
    if (var.error.empty()) {
      SWEEP_CHECK(cudaMemset(count, 0, sizeof(unsigned long long)));
      const int64_t halves = n * static_cast<int64_t>(c.elem_size) / 2;
      count_mismatches<<<g_sms * 8, 256>>>(static_cast<const uint16_t*>(c.out_library),
                                           static_cast<const uint16_t*>(c.out_variant), halves, count);
      SWEEP_CHECK(cudaGetLastError());
      SWEEP_CHECK(cudaMemcpy(&var.mismatches, count, sizeof(unsigned long long), cudaMemcpyDeviceToHost));
      if (!var.may_differ.empty() && var.mismatches > 0) {
        SWEEP_CHECK(cudaMemset(count, 0, sizeof(unsigned long long)));
        if (c.elem_size == 4) {
          count_far<<<g_sms * 8, 256>>>(static_cast<const float*>(c.out_library),
                                        static_cast<const float*>(c.out_variant), n, 1e-5f, count);
        } else {  // the sweep's 2-byte cases are bfloat16
          count_far<<<g_sms * 8, 256>>>(static_cast<const c10::BFloat16*>(c.out_library),
                                        static_cast<const c10::BFloat16*>(c.out_variant), n, 1.f / 128, count);
        }
        SWEEP_CHECK(cudaGetLastError());
        SWEEP_CHECK(cudaMemcpy(&var.far, count, sizeof(unsigned long long), cudaMemcpyDeviceToHost));
      }
    }
    const std::string allowed =
        var.may_differ.empty() ? ""
                               : " (allowed by rounding: " + var.may_differ + "; beyond rounding: " +
                                     std::to_string(var.far) + ")";
    std::printf("check: %s / %s: %s\n", c.name.c_str(), var.name.c_str(),
                !var.error.empty() ? ("launch failed: " + var.error).c_str()
                                   : (std::to_string(var.mismatches) + " values differ" + allowed).c_str());
  }
}

// Times the case's variants and a cudaMemcpy of the same size in interleaved
// rounds, then prints the case's table rows. False if a launch failed or an
// output differed beyond what its variant allows.
bool time_and_print_case(Case& c, int64_t n, int rounds, int reps, void* copy_dst, const void* copy_src) {
  cudaEvent_t start, stop;
  SWEEP_CHECK(cudaEventCreate(&start));
  SWEEP_CHECK(cudaEventCreate(&stop));
  const size_t copy_bytes = n * c.elem_size;
  Variant copy;
  copy.name = "cudaMemcpy";
  copy.launch = [=] { SWEEP_CHECK(cudaMemcpyAsync(copy_dst, copy_src, copy_bytes, cudaMemcpyDeviceToDevice)); };
  std::vector<Variant*> timed{&copy};
  for (auto& v : c.variants) {
    if (v.error.empty()) timed.push_back(&v);
  }
  for (int r = 0; r < rounds; ++r) {
    for (size_t k = 0; k < timed.size(); ++k) {
      Variant& v = *timed[(k + r) % timed.size()];
      v.ms.push_back(time_launches(v.launch, start, stop, reps));
    }
  }
  SWEEP_CHECK(cudaEventDestroy(start));
  SWEEP_CHECK(cudaEventDestroy(stop));
  const double copy_gbs = 2.0 * copy_bytes / median(copy.ms) / 1e6;  // bytes read + written
  const float library_ms = median(c.variants[0].ms);
  std::printf("| %s | cudaMemcpy | | | | | %.3f | %.0f | 100.0 | | |\n", c.name.c_str(), median(copy.ms), copy_gbs);
  bool all_equal = true;
  for (const Variant& v : c.variants) {
    all_equal = all_equal && v.error.empty() && (v.may_differ.empty() ? v.mismatches == 0 : v.far == 0);
    if (!v.error.empty()) {
      std::printf("| %s | %s | %d/%d | %d | %d | %d | launch failed: %s | | | | |\n", c.name.c_str(),
                  v.name.c_str(), v.threads, v.vecs, v.grid, v.regs, v.blocks_per_sm, v.error.c_str());
      continue;
    }
    const float ms = median(v.ms);
    const double gbs = static_cast<double>(c.streams) * n * c.elem_size / ms / 1e6;
    std::printf("| %s | %s | %d/%d | %d | %d | %d | %.3f | %.0f | %.1f | %.3f | %llu |\n", c.name.c_str(),
                v.name.c_str(), v.threads, v.vecs, v.grid, v.regs, v.blocks_per_sm, ms, gbs, 100.0 * gbs / copy_gbs,
                ms / library_ms, v.mismatches);
  }
  return all_equal;
}

}  // namespace sweep
}  // namespace cuda
}  // namespace artderiv

int main(int argc, char** argv) {
  using namespace artderiv;
  using namespace artderiv::cuda;
  using namespace artderiv::cuda::sweep;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each line reaches the log at once, even if the run is cut
  const int log2n = argc > 1 ? std::atoi(argv[1]) : 28;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 7;
  const int64_t n = int64_t{1} << log2n;
  constexpr int kReps = 5;

  cudaDeviceProp prop{};
  SWEEP_CHECK(cudaGetDeviceProperties(&prop, 0));
  g_sms = prop.multiProcessorCount;
  std::printf("device: %s, %d SMs, L2 %d MiB; n = 2^%d; %d rounds x %d launches\n", prop.name, g_sms,
              prop.l2CacheSize >> 20, log2n, rounds, kReps);

  const std::vector<std::function<Case()>> cases = {
      [=] { return forward_case<float, Relu>("forward relu float32", n); },
      [=] { return forward_case<c10::BFloat16, Relu>("forward relu bfloat16", n); },
      [=] { return forward_case<c10::BFloat16, Sigmoid>("forward sigmoid bfloat16", n); },
      [=] { return backward_case<float, Relu, SigmoidRamp>("backward relu:sigmoid float32", n, false); },
      [=] { return backward_case<c10::BFloat16, Relu, SigmoidRamp>("backward relu:sigmoid bfloat16", n, false); },
      [=] {
        return backward_case<c10::BFloat16, Sigmoid, ExactPlus>("backward sigmoid:exact_plus bfloat16", n, true);
      },
  };
  void* copy_src = nullptr;
  void* copy_dst = nullptr;
  SWEEP_CHECK(cudaMalloc(&copy_src, n * 4));
  SWEEP_CHECK(cudaMalloc(&copy_dst, n * 4));
  SWEEP_CHECK(cudaMemset(copy_src, 1, n * 4));
  unsigned long long* count = nullptr;
  SWEEP_CHECK(cudaMalloc(&count, sizeof(unsigned long long)));

  bool all_equal = true;
  for (const auto& make : cases) {
    Case c = make();
    check_case(c, n, count);
    std::printf("\n| case | variant | threads/vecs | grid | regs | blocks/SM | ms | GB/s | %% of copy | vs library | "
                "values differ |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    all_equal = time_and_print_case(c, n, rounds, kReps, copy_dst, copy_src) && all_equal;
    std::printf("\n");
    for (void* p : c.buffers) SWEEP_CHECK(cudaFree(p));
  }
  std::printf("%s\n", all_equal ? "every variant ran, and its output equals the library kernel's (bit for bit, or within rounding where allowed)"
                                : "MISMATCH or FAILED LAUNCH: see the rows above");
  return all_equal ? 0 : 1;
}
