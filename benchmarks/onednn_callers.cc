// Why a oneDNN call inside an XLA step costs more than alone: weight reorders timed alone, and
// timed when called from 1, 2 or 3 rotating threads (as XLA's threads call custom calls).
// libgomp keeps one OpenMP team per calling thread, so a new caller pays a cold team.
// Numbers and the conclusion: benchmarks/NOTES.md ("One thread for every oneDNN call").
//
//   g++ -O2 -std=c++17 benchmarks/onednn_callers.cc -I.venv/include -L.venv/lib -ldnnl \
//       -lpthread -Wl,-rpath,$PWD/.venv/lib -o /tmp/onednn_callers && /tmp/onednn_callers
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "dnnl.hpp"

using dnnl::memory;
using Tag = memory::format_tag;
using Clock = std::chrono::steady_clock;

static double Micros(Clock::time_point since) {
  return std::chrono::duration<double, std::micro>(Clock::now() - since).count();
}

// The forward primitive's preferred (blocked) weights for a 3x3 conv at batch 128.
static memory::desc BlockedWeights(dnnl::engine& eng, int c, int o, int h, int stride) {
  memory::desc src({128, c, h, h}, memory::data_type::f32, Tag::nhwc);
  memory::desc dst({128, o, h / stride, h / stride}, memory::data_type::f32, Tag::nhwc);
  memory::desc any({o, c, 3, 3}, memory::data_type::f32, Tag::any);
  dnnl::convolution_forward::primitive_desc pd(
      eng, dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src, any, dst,
      {stride, stride}, {1, 1}, {1, 1});
  return pd.weights_desc();
}

int main() {
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  std::printf("alone, median of 500 (us): user layout -> the forward's blocked weights\n");
  const int shapes[][4] = {{16, 16, 32, 1}, {16, 32, 32, 2}, {32, 32, 16, 1}, {64, 64, 8, 1}};
  for (const auto& s : shapes) {
    std::printf("  %2d->%2d channels at %2dx%-2d:", s[0], s[1], s[2], s[2]);
    for (Tag user : {Tag::hwio, Tag::ohwi, Tag::oihw}) {
      memory::desc u({s[1], s[0], 3, 3}, memory::data_type::f32, user);
      memory::desc blocked = BlockedWeights(eng, s[0], s[1], s[2], s[3]);
      dnnl::reorder r(dnnl::reorder::primitive_desc(eng, u, eng, blocked));
      memory a(u, eng), b(blocked, eng);
      dnnl::stream stream(eng);
      std::vector<double> t;
      for (int i = 0; i < 520; i++) {
        auto t0 = Clock::now();
        r.execute(stream, a, b);
        stream.wait();
        if (i >= 20) t.push_back(Micros(t0));
      }
      std::sort(t.begin(), t.end());
      std::printf("  %s %5.1f", user == Tag::hwio ? "HWIO" : user == Tag::ohwi ? "OHWI" : "OIHW",
                  t[t.size() / 2]);
    }
    std::printf("\n");
  }
  std::printf("HWIO -> blocked (16->16 channels), called in turn from N threads (us):\n");
  memory::desc u({16, 16, 3, 3}, memory::data_type::f32, Tag::hwio);
  memory::desc blocked = BlockedWeights(eng, 16, 16, 32, 1);
  dnnl::reorder r(dnnl::reorder::primitive_desc(eng, u, eng, blocked));
  memory a(u, eng), b(blocked, eng);
  for (int callers = 1; callers <= 3; callers++) {
    const int calls = 300;
    std::atomic<int> turn{0};
    std::vector<double> t(calls);
    auto caller = [&](int id) {  // waits for its turn spinning, as an idle XLA worker does
      for (int k; (k = turn.load()) < calls;) {
        if (k % callers != id) continue;
        dnnl::stream stream(eng);
        auto t0 = Clock::now();
        r.execute(stream, a, b);
        stream.wait();
        t[k] = Micros(t0);
        turn++;
      }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < callers; i++) threads.emplace_back(caller, i);
    for (auto& th : threads) th.join();
    std::sort(t.begin(), t.end());
    std::printf("  %d caller(s): median %5.1f, p90 %5.1f\n", callers, t[calls / 2],
                t[calls * 9 / 10]);
  }
}
