// oneDNN convolutions (forward, input gradient, weight gradient) as XLA FFI custom calls.
//
// Why: XLA:CPU's kernels run the small-channel CIFAR convs at ~40% of the f32 matmul peak;
// oneDNN's (what PyTorch uses) run them much faster (benchmarks/NOTES.md). Layouts are the
// ones flax uses: activations NHWC, kernels HWIO, float32. No groups, no dilation.
//
// oneDNN primitives are JIT-generated on creation, so each (direction, shape, stride,
// padding) builds its primitive once and keeps it. Kernels are handed to oneDNN in its
// preferred blocked layout (a reorder of a few KiB per call), as PyTorch does.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

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

// Logical shapes in oneDNN's order (N, C, H, W) / (O, I, KH, KW).
struct Geometry {
  int64_t n, c, h, w, o, kh, kw, oh, ow, sh, sw, ph_lo, ph_hi, pw_lo, pw_hi;
  auto Key(Direction d) const {
    return std::make_tuple(static_cast<int>(d), n, c, h, w, o, kh, kw, sh, sw, ph_lo, ph_hi,
                           pw_lo, pw_hi);
  }
  memory::desc Src() const { return memory::desc({n, c, h, w}, Dt::f32, Tag::nhwc); }
  memory::desc Dst() const { return memory::desc({n, o, oh, ow}, Dt::f32, Tag::nhwc); }
  memory::desc UserWeights() const { return memory::desc({o, c, kh, kw}, Dt::f32, Tag::hwio); }
  memory::desc AnyWeights() const { return memory::desc({o, c, kh, kw}, Dt::f32, Tag::any); }
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

ffi::Error Run(const Geometry& g, Direction d, float* activations, float* weights, float* other) {
  // activations: x (forward, weight grad) or dx (input grad); other: y or dy.
  try {
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
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal,
                      std::string("oneDNN convolution failed: ") + e.what());
  }
  return ffi::Error::Success();
}

// x: (N, H, W, C); w: (KH, KW, C, O); y: (N, OH, OW, O).
Geometry Shapes(ffi::Buffer<ffi::F32>::Dimensions x, ffi::Buffer<ffi::F32>::Dimensions w,
                ffi::Buffer<ffi::F32>::Dimensions y, int64_t sh, int64_t sw, int64_t ph_lo,
                int64_t ph_hi, int64_t pw_lo, int64_t pw_hi) {
  return Geometry{x[0], x[3], x[1], x[2], w[3], w[0], w[1], y[1], y[2],
                  sh,   sw,   ph_lo, ph_hi, pw_lo, pw_hi};
}

ffi::Error Forward(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::ResultBuffer<ffi::F32> y, int64_t sh, int64_t sw, int64_t ph_lo,
                   int64_t ph_hi, int64_t pw_lo, int64_t pw_hi) {
  Geometry g = Shapes(x.dimensions(), w.dimensions(), y->dimensions(), sh, sw, ph_lo, ph_hi,
                      pw_lo, pw_hi);
  return Run(g, Direction::kForward, x.typed_data(), w.typed_data(), y->typed_data());
}

ffi::Error InputGrad(ffi::Buffer<ffi::F32> dy, ffi::Buffer<ffi::F32> w,
                     ffi::ResultBuffer<ffi::F32> dx, int64_t sh, int64_t sw, int64_t ph_lo,
                     int64_t ph_hi, int64_t pw_lo, int64_t pw_hi) {
  Geometry g = Shapes(dx->dimensions(), w.dimensions(), dy.dimensions(), sh, sw, ph_lo, ph_hi,
                      pw_lo, pw_hi);
  return Run(g, Direction::kInputGrad, dx->typed_data(), w.typed_data(), dy.typed_data());
}

ffi::Error WeightGrad(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                      ffi::ResultBuffer<ffi::F32> dw, int64_t sh, int64_t sw, int64_t ph_lo,
                      int64_t ph_hi, int64_t pw_lo, int64_t pw_hi) {
  Geometry g = Shapes(x.dimensions(), dw->dimensions(), dy.dimensions(), sh, sw, ph_lo, ph_hi,
                      pw_lo, pw_hi);
  return Run(g, Direction::kWeightGrad, x.typed_data(), dw->typed_data(), dy.typed_data());
}

}  // namespace

#define CONV_BINDING(first, second, result)     \
  ffi::Ffi::Bind()                              \
      .Arg<ffi::Buffer<ffi::F32>>()             \
      .Arg<ffi::Buffer<ffi::F32>>()             \
      .Ret<ffi::Buffer<ffi::F32>>()             \
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
