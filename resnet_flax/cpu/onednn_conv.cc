// oneDNN convolutions (forward, input gradient, weight gradient) as XLA FFI custom calls.
//
// Why: XLA:CPU's kernels run the small-channel CIFAR convs at ~40% of the f32 matmul peak;
// oneDNN's (what PyTorch uses) run them much faster (benchmarks/NOTES.md). Layouts are the
// ones flax uses: activations NHWC, kernels HWIO; float32, or bfloat16 (oneDNN accumulates in
// float32 and rounds the result, as XLA's bfloat16 convs do; on CPUs with AMX or AVX512-BF16 its
// bfloat16 kernels run 3-8x faster than float32 ones). No groups, no dilation.
//
// oneDNN primitives are JIT-generated on creation, so each (direction, shape, stride,
// padding) builds its primitive once and keeps it. Kernels are handed to oneDNN in its
// preferred blocked layout (a reorder of a few KiB per call), as PyTorch does. Float32 calls
// split the batch over XLA's own threads, one single-threaded primitive per slice (Run).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <omp.h>

#include "dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using Tag = dnnl::memory::format_tag;
using Dt = dnnl::memory::data_type;

namespace {

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

enum class Direction { kForward = 0, kInputGrad = 1, kWeightGrad = 2 };

// Logical shapes in oneDNN's order (N, C, H, W) / (O, I, KH, KW); one dtype for all operands.
struct Geometry {
  int64_t n, c, h, w, o, kh, kw, oh, ow, sh, sw, ph_lo, ph_hi, pw_lo, pw_hi;
  Dt dt;
  int threads = 1;  // OpenMP threads the primitive is built for (its kernels and scratchpad)
  auto Key(Direction d) const {
    return std::make_tuple(static_cast<int>(d), static_cast<int>(dt), threads, n, c, h, w, o,
                           kh, kw, sh, sw, ph_lo, ph_hi, pw_lo, pw_hi);
  }
  size_t Bytes() const { return dt == Dt::f32 ? 4 : 2; }
  memory::desc Src() const { return memory::desc({n, c, h, w}, dt, Tag::nhwc); }
  memory::desc Dst() const { return memory::desc({n, o, oh, ow}, dt, Tag::nhwc); }
  memory::desc UserWeights() const { return memory::desc({o, c, kh, kw}, dt, Tag::hwio); }
  memory::desc AnyWeights() const { return memory::desc({o, c, kh, kw}, dt, Tag::any); }
  memory::dims Strides() const { return {sh, sw}; }
  memory::dims PadLo() const { return {ph_lo, pw_lo}; }
  memory::dims PadHi() const { return {ph_hi, pw_hi}; }
};

// One cached primitive with what a call needs around it.
struct Plan {
  dnnl::primitive conv;
  memory::desc weights;        // the primitive's weight (or weight-gradient) layout
  bool reorder_weights = false;
  dnnl::reorder weights_reorder;  // user HWIO -> blocked (or blocked -> HWIO for gradients)
  memory::desc scratchpad;
};

dnnl::primitive_attr Attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::convolution_forward::primitive_desc ForwardPd(const Geometry& g) {
  return dnnl::convolution_forward::primitive_desc(
      Engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, g.Src(),
      g.AnyWeights(), g.Dst(), g.Strides(), g.PadLo(), g.PadHi(), Attr());
}

std::unique_ptr<Plan> MakePlan(const Geometry& g, Direction d) {
  auto plan = std::make_unique<Plan>();
  auto fwd = ForwardPd(g);
  auto user = g.UserWeights();
  if (d == Direction::kForward) {
    plan->conv = dnnl::convolution_forward(fwd);
    plan->weights = fwd.weights_desc();
    plan->scratchpad = fwd.scratchpad_desc();
  } else if (d == Direction::kInputGrad) {
    dnnl::convolution_backward_data::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, g.Src(), g.AnyWeights(), g.Dst(),
        g.Strides(), g.PadLo(), g.PadHi(), fwd, Attr());
    plan->conv = dnnl::convolution_backward_data(pd);
    plan->weights = pd.weights_desc();
    plan->scratchpad = pd.scratchpad_desc();
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, g.Src(), g.AnyWeights(), g.Dst(),
        g.Strides(), g.PadLo(), g.PadHi(), fwd, Attr());
    plan->conv = dnnl::convolution_backward_weights(pd);
    plan->weights = pd.diff_weights_desc();
    plan->scratchpad = pd.scratchpad_desc();
  }
  plan->reorder_weights = plan->weights != user;
  if (plan->reorder_weights) {
    plan->weights_reorder = d == Direction::kWeightGrad
                                ? dnnl::reorder(dnnl::reorder::primitive_desc(
                                      Engine(), plan->weights, Engine(), user))
                                : dnnl::reorder(dnnl::reorder::primitive_desc(
                                      Engine(), user, Engine(), plan->weights));
  }
  return plan;
}

const Plan& GetPlan(const Geometry& g, Direction d) {
  static std::mutex mu;
  static std::map<decltype(g.Key(d)), std::unique_ptr<Plan>> plans;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = plans[g.Key(d)];
  if (!slot) slot = MakePlan(g, d);
  return *slot;
}

// Per-thread scratch (slot 0: blocked weights, 1: oneDNN's scratchpad). Primitives run with a
// user scratchpad, so concurrent calls never share one.
void* Scratch(int slot, size_t bytes) {
  struct Buffer {
    void* data = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffers[2];
  Buffer& b = buffers[slot];
  if (b.size < bytes) {
    std::free(b.data);
    size_t rounded = (bytes + 63) / 64 * 64;
    b.data = std::aligned_alloc(64, rounded);
    b.size = b.data ? rounded : 0;
  }
  return b.data;
}

// One primitive call on the calling thread, with its OpenMP threads already set to g.threads.
// activations: x (forward, weight grad) or dx (input grad); other: y or dy. Throws dnnl::error.
void RunOne(const Geometry& g, Direction d, void* activations, void* weights, void* other) {
  const Plan& plan = GetPlan(g, d);
  dnnl::stream stream(Engine());
  memory user_w(g.UserWeights(), Engine(), weights);
  memory w = user_w;
  if (plan.reorder_weights) {
    w = memory(plan.weights, Engine(), Scratch(0, plan.weights.get_size()));
    if (d != Direction::kWeightGrad) plan.weights_reorder.execute(stream, user_w, w);
  }
  memory src(g.Src(), Engine(), activations);
  memory dst(g.Dst(), Engine(), other);
  memory scratch(plan.scratchpad, Engine(), Scratch(1, plan.scratchpad.get_size()));
  if (d == Direction::kForward) {
    plan.conv.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w},
                               {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratch}});
  } else if (d == Direction::kInputGrad) {
    plan.conv.execute(stream, {{DNNL_ARG_DIFF_SRC, src}, {DNNL_ARG_WEIGHTS, w},
                               {DNNL_ARG_DIFF_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratch}});
  } else {
    plan.conv.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_WEIGHTS, w},
                               {DNNL_ARG_DIFF_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratch}});
    if (plan.reorder_weights) plan.weights_reorder.execute(stream, w, user_w);
  }
  stream.wait();
}

// OpenMP's thread count when the library loaded (OMP_NUM_THREADS or the cores), before any
// call set a thread's own count.
const int kOmpThreads = omp_get_max_threads();

// Calls fn(0) ... fn(parts - 1) on this thread and on XLA's own threads, each part once. The
// caller takes whatever parts no helper has started, so it never waits on a queued task.
template <typename F>
void ParallelFor(ffi::ThreadPool& pool, int parts, const F& fn) {
  struct State {
    std::atomic<int> next{0}, done{0};
  };
  auto state = std::make_shared<State>();
  auto work = [state, parts, f = &fn]() {  // f is only read while a part is unfinished
    for (int i; (i = state->next.fetch_add(1)) < parts;) {
      (*f)(i);
      state->done.fetch_add(1, std::memory_order_release);
    }
  };
  int64_t helpers = std::min<int64_t>(pool.num_threads(), parts - 1);
  for (int64_t k = 0; k < helpers; ++k) pool.Schedule(decltype(work)(work));
  work();
  for (int spins = 0; state->done.load(std::memory_order_acquire) < parts; ++spins) {
    if (spins > 100) std::this_thread::yield();
  }
}

// How many batch slices a call runs as: one per XLA thread for float32 (see Run); 1 (one
// primitive over OpenMP's team) for bfloat16, whose weight gradient oneDNN rounds once from its
// own float32 sum, and where XLA gives no thread pool.
int Slices(const Geometry& g, ffi::ThreadPool& pool) {
  if (g.dt != Dt::f32) return 1;
  return static_cast<int>(std::min<int64_t>(pool.num_threads(), g.n));
}

ffi::Error Run(const Geometry& g, Direction d, void* activations, void* weights, void* other,
               ffi::ThreadPool& pool) {
  int parts = Slices(g, pool);
  try {
    if (parts <= 1) {  // one primitive over OpenMP's team
      Geometry all = g;
      all.threads = kOmpThreads;
      omp_set_num_threads(all.threads);
      RunOne(all, d, activations, weights, other);
      return ffi::Error::Success();
    }
    // The batch in `parts` slices, each a one-thread primitive on whichever of XLA's threads
    // takes it, so oneDNN's work runs on the threads that run XLA's own: no OpenMP team to wake
    // per call (~50 us each), no 4 threads on 2 cores. Weight gradients per slice, summed here
    // in slice order: the same sum whichever thread ran which slice.
    size_t wsize = g.o * g.c * g.kh * g.kw;
    std::vector<float> partial(d == Direction::kWeightGrad ? wsize * parts : 0);
    std::string error;
    std::mutex error_mu;
    ParallelFor(pool, parts, [&](int i) {
      int64_t n0 = g.n * i / parts, n1 = g.n * (i + 1) / parts;
      Geometry slice = g;
      slice.n = n1 - n0;
      slice.threads = 1;
      char* a = static_cast<char*>(activations) + n0 * g.h * g.w * g.c * g.Bytes();
      char* o = static_cast<char*>(other) + n0 * g.oh * g.ow * g.o * g.Bytes();
      void* wp = d == Direction::kWeightGrad ? partial.data() + wsize * i : weights;
      try {
        omp_set_num_threads(1);
        RunOne(slice, d, a, wp, o);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (error.empty()) error = e.what();
      }
    });
    if (!error.empty()) throw dnnl::error(dnnl_runtime_error, error.c_str());
    if (d == Direction::kWeightGrad) {
      float* dw = static_cast<float*>(weights);
      std::memcpy(dw, partial.data(), wsize * sizeof(float));
      for (int i = 1; i < parts; ++i) {
        const float* p = partial.data() + wsize * i;
        for (size_t k = 0; k < wsize; ++k) dw[k] += p[k];
      }
    }
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal,
                      std::string("oneDNN convolution failed: ") + e.what());
  }
  return ffi::Error::Success();
}

using Buffer = ffi::AnyBuffer;
using Result = ffi::Result<ffi::AnyBuffer>;

// x: (N, H, W, C); w: (KH, KW, C, O); y: (N, OH, OW, O). All three float32 or all bfloat16
// (cpu/onednn.py only sends those; checked again here, as XLA would let any through).
ffi::Error Shapes(const Buffer& x, const Buffer& w, const Buffer& y, int64_t sh, int64_t sw,
                  int64_t ph_lo, int64_t ph_hi, int64_t pw_lo, int64_t pw_hi, Geometry* g) {
  ffi::DataType t = x.element_type();
  if ((t != ffi::DataType::F32 && t != ffi::DataType::BF16) || w.element_type() != t ||
      y.element_type() != t) {
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "oneDNN convolution: operands must all be float32 or all bfloat16");
  }
  auto xd = x.dimensions(), wd = w.dimensions(), yd = y.dimensions();
  *g = Geometry{xd[0], xd[3], xd[1], xd[2], wd[3], wd[0], wd[1], yd[1], yd[2], sh, sw,
                ph_lo, ph_hi, pw_lo, pw_hi, t == ffi::DataType::F32 ? Dt::f32 : Dt::bf16};
  return ffi::Error::Success();
}

ffi::Error Forward(ffi::ThreadPool pool, Buffer x, Buffer w, Result y, int64_t sh, int64_t sw, int64_t ph_lo,
                   int64_t ph_hi, int64_t pw_lo, int64_t pw_hi) {
  Geometry g;
  ffi::Error error = Shapes(x, w, *y, sh, sw, ph_lo, ph_hi, pw_lo, pw_hi, &g);
  if (error.failure()) return error;
  return Run(g, Direction::kForward, x.untyped_data(), w.untyped_data(), y->untyped_data(), pool);
}

ffi::Error InputGrad(ffi::ThreadPool pool, Buffer dy, Buffer w, Result dx, int64_t sh, int64_t sw, int64_t ph_lo,
                     int64_t ph_hi, int64_t pw_lo, int64_t pw_hi) {
  Geometry g;
  ffi::Error error = Shapes(*dx, w, dy, sh, sw, ph_lo, ph_hi, pw_lo, pw_hi, &g);
  if (error.failure()) return error;
  return Run(g, Direction::kInputGrad, dx->untyped_data(), w.untyped_data(), dy.untyped_data(), pool);
}

ffi::Error WeightGrad(ffi::ThreadPool pool, Buffer x, Buffer dy, Result dw, int64_t sh, int64_t sw, int64_t ph_lo,
                      int64_t ph_hi, int64_t pw_lo, int64_t pw_hi) {
  Geometry g;
  ffi::Error error = Shapes(x, *dw, dy, sh, sw, ph_lo, ph_hi, pw_lo, pw_hi, &g);
  if (error.failure()) return error;
  return Run(g, Direction::kWeightGrad, x.untyped_data(), dw->untyped_data(),
             dy.untyped_data(), pool);
}

}  // namespace

#define CONV_BINDING(first, second, result)     \
  ffi::Ffi::Bind()                              \
      .Ctx<ffi::ThreadPool>()                   \
      .Arg<ffi::AnyBuffer>()                    \
      .Arg<ffi::AnyBuffer>()                    \
      .Ret<ffi::AnyBuffer>()                    \
      .Attr<int64_t>("sh")                      \
      .Attr<int64_t>("sw")                      \
      .Attr<int64_t>("ph_lo")                   \
      .Attr<int64_t>("ph_hi")                   \
      .Attr<int64_t>("pw_lo")                   \
      .Attr<int64_t>("pw_hi")

XLA_FFI_DEFINE_HANDLER_SYMBOL(ResnetFlaxOnednnConvForward, Forward, CONV_BINDING(x, w, y));
XLA_FFI_DEFINE_HANDLER_SYMBOL(ResnetFlaxOnednnConvInputGrad, InputGrad, CONV_BINDING(dy, w, dx));
XLA_FFI_DEFINE_HANDLER_SYMBOL(ResnetFlaxOnednnConvWeightGrad, WeightGrad,
                              CONV_BINDING(x, dy, dw));

// The oneDNN version this library was built against, for error messages and the bench.
extern "C" const char* ResnetFlaxOnednnVersion() {
  static std::string v = [] {
    const dnnl_version_t* ver = dnnl_version();
    return std::to_string(ver->major) + "." + std::to_string(ver->minor) + "." +
           std::to_string(ver->patch);
  }();
  return v.c_str();
}
