#include "edgefleet/latency_predictor.h"

#include <torch/csrc/jit/api/module.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "core/elapsed.h"
#include "core/median.h"
#include "core/scratch_folder.h"
#include "edgefleet/classifier.h"
#include "edgefleet/latency.h"
#include "port/channel_graph.h"
#include "port/kernel_latency.h"

namespace edgefleet {
namespace {

using torch::jit::Module;

// The features a kernel's latency is fitted on: [1, MMACs, M elements moved, M weights].
std::vector<double> features(const KernelUse& k) {
  return {1.0, static_cast<double>(k.macs) / 1e6, static_cast<double>(k.input_elements + k.output_elements) / 1e6,
          static_cast<double>(k.weights) / 1e6};
}

// Pointwise and k x k convolutions run different code: one predictor each.
std::string predictor_key(const KernelUse& k) {
  if (k.kind == "conv") return k.kernel == 1 ? "conv1x1" : "convkxk";
  return k.kind;
}

// Median ms of one forward through a graph.
double median_forward_ms(Module& graph, const torch::Tensor& input) {
  torch::InferenceMode guard;
  for (int i = 0; i < 3; ++i) graph.forward({input});
  auto start = std::chrono::steady_clock::now();
  graph.forward({input});
  const double once = std::max(seconds_since(start), 1e-6);
  const int runs = std::clamp(static_cast<int>(0.02 / once), 5, 400);
  std::vector<double> per_run;
  for (int repeat = 0; repeat < 5; ++repeat) {
    start = std::chrono::steady_clock::now();
    for (int i = 0; i < runs; ++i) graph.forward({input});
    per_run.push_back(seconds_since(start) * 1e3 / runs);
  }
  return median_of(per_run);
}

// A kernel's ms on each graph the Classifier may run: frozen (conv+bn folded), and frozen
// then optimised for inference.
struct GraphTimes {
  double optimized = 0.0;
  double frozen = 0.0;
};

GraphTimes time_kernel(Module module, const torch::Tensor& input) {
  module.eval();
  Module frozen = torch::jit::freeze(module.clone());
  Module to_optimize = frozen.clone();
  Module optimized = torch::jit::optimize_for_inference(to_optimize);
  GraphTimes times;
  times.optimized = median_forward_ms(optimized, input);
  times.frozen = median_forward_ms(frozen, input);
  return times;
}

Module kernel_module(const std::string& name) {
  Module m(name);
  m.register_attribute("training", c10::BoolType::get(), false);
  return m;
}

struct Sample {
  KernelUse use;
  GraphTimes ms;
};

// One timed kernel of each sweep point.
class Sweep {
 public:
  explicit Sweep(std::uint64_t seed) : rng_(seed) {}

  Sample conv(bool depthwise) {
    static const std::vector<int> widths = {16, 32, 48, 64, 96, 128, 192, 256, 384, 512};
    static const std::vector<int> dw_widths = {16, 32, 64, 96, 144, 192, 384, 576, 960};
    static const std::vector<int> sizes = {7, 14, 28, 56, 112};
    for (;;) {
      const int k = depthwise ? 3 : pick({1, 3});
      const int stride = pick({1, 2});
      const int cin = depthwise ? pick(dw_widths) : pick(widths);
      const int cout = depthwise ? cin : pick(widths);
      const int hw = pick(sizes);
      const int out_hw = (hw + 2 * (k / 2) - k) / stride + 1;
      const std::int64_t macs = static_cast<std::int64_t>(cout) * out_hw * out_hw * (depthwise ? 1 : cin) * k * k;
      if (macs > 250'000'000 || macs < 50'000) continue;
      Module m = kernel_module(depthwise ? "DwConvBnAct" : "ConvBnAct");
      m.register_parameter("w", torch::randn({cout, depthwise ? 1 : cin, k, k}) * 0.1, false);
      m.register_parameter("g", torch::rand({cout}) + 0.5, false);
      m.register_parameter("b", torch::randn({cout}) * 0.1, false);
      m.register_buffer("rm", torch::zeros({cout}));
      m.register_buffer("rv", torch::ones({cout}));
      const std::string s = std::to_string(stride), p = std::to_string(k / 2), groups = std::to_string(depthwise ? cin : 1);
      m.define("def forward(self, x):\n  return torch.hardtanh(torch.batch_norm(torch.conv2d(x, self.w, None, [" + s + ", " + s + "], [" + p +
               ", " + p + "], [1, 1], " + groups + "), self.g, self.b, self.rm, self.rv, False, 0.1, 1e-5, False), 0.0, 6.0)\n");
      Sample sample;
      sample.use.kind = depthwise ? "dwconv" : "conv";
      sample.use.kernel = k;
      sample.use.stride = stride;
      sample.use.macs = macs;
      sample.use.weights = static_cast<std::int64_t>(cout) * (depthwise ? 1 : cin) * k * k;
      sample.use.input_elements = static_cast<std::int64_t>(cin) * hw * hw;
      sample.use.output_elements = static_cast<std::int64_t>(cout) * out_hw * out_hw;
      sample.ms = time_kernel(m, torch::rand({1, cin, hw, hw}));
      return sample;
    }
  }

  Sample linear() {
    const int in = pick({128, 256, 512, 1024, 1280, 2048});
    const int out = pick({10, 100, 1000});
    Module m = kernel_module("Linear");
    m.register_parameter("w", torch::randn({out, in}) * 0.05, false);
    m.register_parameter("b", torch::zeros({out}), false);
    m.define("def forward(self, x):\n  return torch.linear(x, self.w, self.b)\n");
    Sample sample;
    sample.use.kind = "linear";
    sample.use.macs = sample.use.weights = static_cast<std::int64_t>(in) * out;
    sample.use.input_elements = in;
    sample.use.output_elements = out;
    sample.ms = time_kernel(m, torch::rand({1, in}));
    return sample;
  }

  // Kernels that only move elements: add, concat, pool, pad, elementwise.
  Sample moving(const std::string& kind) {
    const int c = pick({16, 32, 64, 96, 144, 192, 384, 576, 960});
    const int hw = pick({7, 14, 28, 56, 112});
    const std::int64_t n = static_cast<std::int64_t>(c) * hw * hw;
    Module m = kernel_module("Moving");
    Sample sample;
    sample.use.kind = kind;
    torch::Tensor input = torch::rand({1, c, hw, hw});
    if (kind == "add") {
      m.define("def forward(self, x):\n  a, b = torch.chunk(x, 2, 1)\n  return a + b\n");
      input = torch::rand({1, 2 * c, hw, hw});
      sample.use.input_elements = sample.use.output_elements = n;
    } else if (kind == "concat") {
      m.define("def forward(self, x):\n  a, b = torch.chunk(x, 2, 1)\n  return torch.cat([b, a], 1)\n");
      sample.use.input_elements = sample.use.output_elements = n;
    } else if (kind == "pool") {
      if (pick({0, 1}) == 0) {
        m.define("def forward(self, x):\n  return torch.max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], False)\n");
        sample.use.output_elements = n / 4;
      } else {
        m.define("def forward(self, x):\n  return torch.adaptive_avg_pool2d(x, [1, 1])\n");
        sample.use.output_elements = c;
      }
      sample.use.input_elements = n;
    } else if (kind == "pad") {
      m.define("def forward(self, x):\n  return torch.constant_pad_nd(x, [0, 1, 0, 1], 0.0)\n");
      sample.use.input_elements = n;
      sample.use.output_elements = static_cast<std::int64_t>(c) * (hw + 1) * (hw + 1);
    } else {
      m.define("def forward(self, x):\n  return torch.relu(x)\n");
      sample.use.input_elements = sample.use.output_elements = n;
    }
    sample.ms = time_kernel(m, input);
    return sample;
  }

 private:
  int pick(const std::vector<int>& values) {
    return values[std::uniform_int_distribution<std::size_t>(0, values.size() - 1)(rng_)];
  }
  std::mt19937_64 rng_;
};

// A random network of one family real classifiers are built from, written as scripted source:
// the calibration's whole models. Widths are multiples of 8.
class RandomNetwork {
 public:
  enum Family { kPlain, kMobileNetV1, kMobileNetV2, kFire, kResidual };

  explicit RandomNetwork(std::mt19937_64& rng) : rng_(rng), m_(kernel_module("RandomNetwork")) {}

  // The network; its input shape in `input_shape`.
  Module build(std::vector<std::int64_t>& input_shape) {
    const Family family = static_cast<Family>(pick({0, 1, 2, 3, 4}));
    // Half the networks at 224 pixels, the input of the ImageNet models users port (their
    // large early activations cost differently in context than small ones); the rest spread
    // down to the zoo's 28 pixels. Depths up to MobileNetV2's 17 blocks.
    const int size = pick({0, 1}) ? 224 : pick({28, 32, 64, 96, 128, 160, 192});
    const int in_channels = size <= 32 ? pick({1, 3}) : 3;
    input_shape = {1, in_channels, size, size};
    shapes_["x"] = {in_channels, size};
    const double width = uniform(0.25, 1.0);
    auto w = [&](int base) { return std::max(8, static_cast<int>(std::lround(base * width / 8.0)) * 8); };
    const bool tf_pad = pick({0, 1}) == 1;
    std::string x = "x";
    const int blocks = pick({3, 4, 5, 6, 8, 10, 12, 14, 17});
    switch (family) {
      case kPlain: {  // Tiny DarkNet / the zoo's plain CNNs: conv stacks, 1x1 squeezes, max pooling
        const std::string act = pick({0, 1}) ? "leaky" : "relu";
        x = conv(x, w(16), 3, 1, 1, false, act);
        int c = w(16);
        for (int b = 0; b < blocks; ++b) {
          if (side(x) >= 4 && b % 2 == 0) x = max_pool(x);
          c = std::min(1024, c * 2);
          x = conv(x, c / (b % 3 == 2 ? 2 : 1), b % 3 == 2 ? 1 : 3, 1, 1, false, act);
        }
        break;
      }
      case kMobileNetV1: {
        x = conv(x, w(32), 3, size >= 64 ? 2 : 1, 1, tf_pad, "relu6");
        int c = w(32);
        for (int b = 0; b < blocks; ++b) {
          const int stride = side(x) >= 8 && b % 2 == 1 ? 2 : 1;
          if (stride == 2) c = std::min(1024, c * 2);
          x = depthwise(x, stride, tf_pad);
          x = conv(x, c, 1, 1, 1, false, "relu6");
        }
        break;
      }
      case kMobileNetV2: {
        x = conv(x, w(32), 3, size >= 64 ? 2 : 1, 1, tf_pad, "relu6");
        x = depthwise(x, 1, false);
        x = conv(x, w(16), 1, 1, 1, false, "");
        for (int b = 0; b < blocks; ++b) {
          const bool down = side(x) >= 8 && b % 3 == 0;
          const std::string in = x;
          const int out = down ? std::min(320, channels(in) * 2) : channels(in);
          x = conv(x, channels(in) * pick({1, 6}), 1, 1, 1, false, "relu6");
          x = depthwise(x, down ? 2 : 1, tf_pad && down);
          x = conv(x, out, 1, 1, 1, false, "");
          if (!down) x = add(x, in, "");
        }
        x = conv(x, w(1280), 1, 1, 1, false, "relu6");
        break;
      }
      case kFire: {
        x = conv(x, w(64), 3, size >= 64 ? 2 : 1, 1, false, "relu");
        int c = w(16);
        for (int b = 0; b < blocks; ++b) {
          if (side(x) >= 4 && b % 3 == 0) x = max_pool(x);
          if (b % 2 == 0) c = std::min(64, c + w(16));
          const std::string s = conv(x, c, 1, 1, 1, false, "relu");
          const std::string e1 = conv(s, 4 * c, 1, 1, 1, false, "relu");
          const std::string e3 = conv(s, 4 * c, 3, 1, 1, false, "relu");
          x = cat(e1, e3);
        }
        x = conv(x, w(512), 1, 1, 1, false, "relu");
        break;
      }
      default: {  // basic residual blocks
        x = conv(x, w(32), 3, size >= 64 ? 2 : 1, 1, false, "relu");
        for (int b = 0; b < blocks; ++b) {
          const bool down = side(x) >= 8 && b % 2 == 1;
          const std::string in = x;
          const int out = down ? std::min(512, channels(in) * 2) : channels(in);
          x = conv(x, out, 3, down ? 2 : 1, 1, false, "relu");
          x = conv(x, out, 3, 1, 1, false, "");
          const std::string shortcut = down || channels(in) != out ? conv(in, out, 1, down ? 2 : 1, 1, false, "") : in;
          x = add(x, shortcut, "relu");
        }
      }
    }
    classes_ = pick({10, 100, 1000});
    const std::string name = "fc" + std::to_string(next_++);
    m_.register_parameter(name + "_w", torch::randn({classes_, channels(x)}) * 0.05, false);
    m_.register_parameter(name + "_b", torch::zeros({classes_}), false);
    lines_.push_back("  return torch.linear(torch.flatten(torch.adaptive_avg_pool2d(" + x + ", [1, 1]), 1), self." + name +
                     "_w, self." + name + "_b)");
    std::string source = "def forward(self, x):\n";
    for (const auto& line : lines_) source += line + "\n";
    m_.define(source);
    return m_;
  }
  int classes() const { return classes_; }

 private:
  struct Shape {
    int channels = 0;
    int side = 0;  // square activations
  };

  int pick(const std::vector<int>& values) { return values[std::uniform_int_distribution<std::size_t>(0, values.size() - 1)(rng_)]; }
  double uniform(double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng_); }
  int channels(const std::string& value) const { return shapes_.at(value).channels; }
  int side(const std::string& value) const { return shapes_.at(value).side; }
  // A fresh value of the given shape, computed by `expression`.
  std::string emit(const std::string& expression, Shape shape) {
    const std::string out = "v" + std::to_string(next_++);
    lines_.push_back("  " + out + " = " + expression);
    shapes_[out] = shape;
    return out;
  }

  static std::string activation(const std::string& x, const std::string& act) {
    if (act == "relu") return "torch.relu(" + x + ")";
    if (act == "relu6") return "torch.hardtanh(" + x + ", 0.0, 6.0)";
    if (act == "leaky") return "torch.leaky_relu(" + x + ", 0.1)";
    return x;
  }

  // conv + batch norm + activation; TF-"same" stride-2 padding as an explicit pad, as
  // converted TensorFlow models have it.
  std::string conv(const std::string& x, int cout, int k, int stride, int groups, bool tf_pad, const std::string& act) {
    const int cin = channels(x);
    std::string input = x;
    int padding = k / 2;
    if (tf_pad && stride == 2 && k > 1) {
      input = emit("torch.constant_pad_nd(" + x + ", [0, 1, 0, 1], 0.0)", {cin, side(x) + 1});
      padding = 0;
    }
    const std::string p = std::to_string(next_++);
    m_.register_parameter("w" + p, torch::randn({cout, cin / groups, k, k}) * (1.0 / std::sqrt(cin / groups * k * k)), false);
    m_.register_parameter("g" + p, torch::rand({cout}) + 0.5, false);
    m_.register_parameter("b" + p, torch::randn({cout}) * 0.1, false);
    m_.register_buffer("rm" + p, torch::zeros({cout}));
    m_.register_buffer("rv" + p, torch::ones({cout}));
    const std::string s = std::to_string(stride), pad = std::to_string(padding);
    return emit(activation("torch.batch_norm(torch.conv2d(" + input + ", self.w" + p + ", None, [" + s + ", " + s + "], [" + pad + ", " +
                               pad + "], [1, 1], " + std::to_string(groups) + "), self.g" + p + ", self.b" + p + ", self.rm" + p +
                               ", self.rv" + p + ", False, 0.1, 1e-5, False)",
                           act),
                {cout, (side(input) + 2 * padding - k) / stride + 1});
  }
  std::string depthwise(const std::string& x, int stride, bool tf_pad) {
    return conv(x, channels(x), 3, stride, channels(x), tf_pad, "relu6");
  }
  std::string max_pool(const std::string& x) {
    return emit("torch.max_pool2d(" + x + ", [2, 2], [2, 2], [0, 0], [1, 1], False)", {channels(x), side(x) / 2});
  }
  std::string add(const std::string& a, const std::string& b, const std::string& act) {
    return emit(activation(a + " + " + b, act), shapes_.at(a));
  }
  std::string cat(const std::string& a, const std::string& b) {
    return emit("torch.cat([" + a + ", " + b + "], 1)", {channels(a) + channels(b), side(a)});
  }

  std::mt19937_64& rng_;
  Module m_;
  std::vector<std::string> lines_;
  std::map<std::string, Shape> shapes_;  // of every value written so far, by name
  int next_ = 0;
  int classes_ = 0;
};

// Weighted least squares on relative error: rows f_i / y_i against 1. Columns no sample uses
// (e.g. weights of an add) are left at zero.
std::vector<double> fit(const std::vector<Sample>& samples, double GraphTimes::*graph) {
  const std::size_t columns = 4;
  std::vector<bool> used(columns, false);
  used[0] = true;
  for (const auto& s : samples) {
    const auto f = features(s.use);
    for (std::size_t c = 1; c < columns; ++c) used[c] = used[c] || f[c] != 0.0;
  }
  std::vector<std::size_t> kept;
  for (std::size_t c = 0; c < columns; ++c) {
    if (used[c]) kept.push_back(c);
  }
  auto a = torch::zeros({static_cast<std::int64_t>(samples.size()), static_cast<std::int64_t>(kept.size())}, torch::kDouble);
  auto b = torch::ones({static_cast<std::int64_t>(samples.size()), 1}, torch::kDouble);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto f = features(samples[i].use);
    for (std::size_t j = 0; j < kept.size(); ++j) a[static_cast<std::int64_t>(i)][static_cast<std::int64_t>(j)] = f[kept[j]] / (samples[i].ms.*graph);
  }
  const auto solution = std::get<0>(torch::linalg_lstsq(a, b, c10::nullopt, c10::nullopt));
  std::vector<double> out(columns, 0.0);
  for (std::size_t j = 0; j < kept.size(); ++j) out[kept[j]] = solution[static_cast<std::int64_t>(j)][0].item<double>();
  return out;
}

double evaluate(const std::vector<double>& c, const KernelUse& k) {
  const auto f = features(k);
  double ms = 0.0;
  for (std::size_t i = 0; i < f.size() && i < c.size(); ++i) ms += c[i] * f[i];
  return ms;
}


// The kernel types a latency model predicts in context, in a fixed order.
const std::vector<std::string>& context_types() {
  static const std::vector<std::string> types = {"add", "concat", "conv1x1", "convkxk", "dwconv", "elementwise", "linear", "pad", "pool"};
  return types;
}

TypeSums type_sums(const GraphLatency& predictor, const std::vector<KernelUse>& kernels) {
  TypeSums sums;
  for (const auto& k : kernels) {
    const std::string key = predictor_key(k);
    auto it = predictor.coefficients.find(key);
    if (it == predictor.coefficients.end()) throw Error(invalid_argument("predict: the latency model has no '" + key + "' kernel"));
    // Each timed kernel counted one call; a model pays it once.
    sums.predicted_ms[key] += std::max(0.0, evaluate(it->second, k) - predictor.call_overhead_ms);
    sums.count[key] += 1;
  }
  return sums;
}

struct NetworkTiming {
  double ms = 0.0;
  InferenceGraph graph = InferenceGraph::kNone;
};

// The median batch-1 ms of a module run the way a deployed model runs: saved, loaded through
// the Classifier (which chooses the optimised or the plain frozen graph), 5 rounds of 20; and
// the graph it chose.
NetworkTiming classifier_ms(Module module, const std::vector<std::int64_t>& shape, int threads, int classes, const ScratchFolder& scratch) {
  module.eval();
  module.save(scratch.file("net.pt"));
  ModelCard card;
  card.name = "calibration-network";
  card.task = "latency calibration";
  card.file = "net.pt";
  card.classes = classes;
  card.input.color = shape[1] == 1 ? InputColor::kGray : InputColor::kRgb;
  card.input.height = static_cast<int>(shape[2]);
  card.input.width = static_cast<int>(shape[3]);
  if (Status written = write_card(card, scratch.file("net.json")); !written.is_ok()) throw Error(written);
  LoadOptions load;
  load.threads = threads;
  auto classifier = load_classifier(read_card(scratch.file("net.json")).value(), load).value();
  std::vector<double> medians;
  for (int round = 0; round < 5; ++round) medians.push_back(measure_latency(*classifier, 1, 3, 20).value().median_ms);
  return {median_of(medians), classifier->batch1_graph()};
}

constexpr double kScaleRidge = 0.05, kPerKernelRidge = 1.0;  // per unit scale, per ms

// With fewer than two networks per unknown, a scale and a cost per type are not determined (a
// first fit on 24 networks priced every k x k conv of the frozen graph at 0): one scale for
// every type and a per-call ms, both >= 0.
void fit_shared_scale(GraphLatency& predictor, const std::vector<NetworkSample>& networks) {
  const auto n = static_cast<std::int64_t>(networks.size());
  auto a = torch::zeros({n + 1, 2}, torch::kDouble);
  auto b = torch::ones({n + 1, 1}, torch::kDouble);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto& net = networks[static_cast<std::size_t>(i)];
    double total = 0.0;
    for (const auto& [key, ms] : net.sums.predicted_ms) total += ms;
    a[i][0] = 1.0 / net.ms;
    a[i][1] = total / net.ms;
  }
  a[n][1] = kScaleRidge;
  b[n][0] = kScaleRidge;
  const auto x = std::get<0>(torch::linalg_lstsq(a, b, c10::nullopt, c10::nullopt));
  double call = x[0][0].item<double>(), scale = x[1][0].item<double>();
  if (call < 0) {  // refit the scale alone
    call = 0.0;
    const auto only = std::get<0>(torch::linalg_lstsq(a.slice(1, 1, 2), b, c10::nullopt, c10::nullopt));
    scale = only[0][0].item<double>();
  }
  predictor.context_call_ms = call;
  predictor.context.clear();
  for (const auto& type : context_types()) predictor.context[type] = {std::max(scale, 0.0), 0.0};
}

}  // namespace

namespace {

// The context fit at one ridge strength (a multiple of the base pulls).
void fit_context_at(GraphLatency& predictor, const std::vector<NetworkSample>& networks, double ridge) {
  const auto& types = context_types();
  const std::int64_t columns = 1 + 2 * static_cast<std::int64_t>(types.size());
  const std::int64_t rows = static_cast<std::int64_t>(networks.size()) + columns - 1;
  auto a = torch::zeros({rows, columns}, torch::kDouble);
  auto b = torch::zeros({rows, 1}, torch::kDouble);
  for (std::size_t i = 0; i < networks.size(); ++i) {
    const auto& n = networks[i];
    const auto r = static_cast<std::int64_t>(i);
    a[r][0] = 1.0 / n.ms;
    for (std::size_t t = 0; t < types.size(); ++t) {
      const auto p = n.sums.predicted_ms.find(types[t]);
      const auto c = n.sums.count.find(types[t]);
      a[r][1 + 2 * static_cast<std::int64_t>(t)] = (p == n.sums.predicted_ms.end() ? 0.0 : p->second) / n.ms;
      a[r][2 + 2 * static_cast<std::int64_t>(t)] = (c == n.sums.count.end() ? 0.0 : c->second) / n.ms;
    }
    b[r][0] = 1.0;
  }
  for (std::int64_t j = 1; j < columns; ++j) {
    const auto r = static_cast<std::int64_t>(networks.size()) + j - 1;
    const bool scale = j % 2 == 1;
    a[r][j] = (scale ? kScaleRidge : kPerKernelRidge) * ridge;
    b[r][0] = scale ? kScaleRidge * ridge : 0.0;
  }
  // Non-negative: a column whose coefficient comes out negative is fixed at 0 and the rest
  // refitted (an active-set loop), so no kernel type ever makes a model faster.
  std::vector<bool> free(static_cast<std::size_t>(columns), true);
  std::vector<double> x(static_cast<std::size_t>(columns), 0.0);
  for (std::int64_t round = 0; round < columns; ++round) {
    std::vector<std::int64_t> kept;
    for (std::int64_t j = 0; j < columns; ++j) {
      if (free[static_cast<std::size_t>(j)]) kept.push_back(j);
    }
    const auto solution = std::get<0>(torch::linalg_lstsq(a.index_select(1, torch::tensor(kept)), b, c10::nullopt, c10::nullopt));
    std::fill(x.begin(), x.end(), 0.0);
    std::int64_t most_negative = -1;
    for (std::size_t k = 0; k < kept.size(); ++k) {
      x[static_cast<std::size_t>(kept[k])] = solution[static_cast<std::int64_t>(k)][0].item<double>();
      if (x[static_cast<std::size_t>(kept[k])] < 0 && (most_negative < 0 || x[static_cast<std::size_t>(kept[k])] < x[static_cast<std::size_t>(most_negative)])) {
        most_negative = kept[k];
      }
    }
    if (most_negative < 0) break;
    free[static_cast<std::size_t>(most_negative)] = false;
    x[static_cast<std::size_t>(most_negative)] = 0.0;
  }
  predictor.context_call_ms = x[0];
  predictor.context.clear();
  for (std::size_t t = 0; t < types.size(); ++t) predictor.context[types[t]] = {x[1 + 2 * t], x[2 + 2 * t]};
  predictor.context_ridge = ridge;
}

}  // namespace

void fit_context(GraphLatency& predictor, const std::vector<NetworkSample>& networks) {
  const std::int64_t columns = 1 + 2 * static_cast<std::int64_t>(context_types().size());
  if (static_cast<std::int64_t>(networks.size()) < 2 * columns) return fit_shared_scale(predictor, networks);
  // The ridge strength by 5-fold cross-validation on the networks: the one whose fits predict
  // the networks they did not see best (median relative error; a tie goes to the stronger).
  constexpr int kFolds = 5;
  double best_ridge = 1.0, best_error = 0.0;
  for (const double ridge : {1.0, 4.0, 16.0, 64.0}) {
    std::vector<double> errors;
    for (int fold = 0; fold < kFolds; ++fold) {
      std::vector<NetworkSample> train, test;
      for (std::size_t i = 0; i < networks.size(); ++i) (static_cast<int>(i % kFolds) == fold ? test : train).push_back(networks[i]);
      GraphLatency fitted = predictor;
      fit_context_at(fitted, train, ridge);
      for (const auto& n : test) errors.push_back(std::abs(predict_from_sums(fitted, n.sums) - n.ms) / n.ms);
    }
    const double error = median_of(errors);
    if (ridge == 1.0 || error <= best_error) {
      best_ridge = ridge;
      best_error = error;
    }
  }
  fit_context_at(predictor, networks, best_ridge);
}

double predict_from_sums(const GraphLatency& predictor, const TypeSums& sums) {
  if (predictor.context.empty()) {
    double ms = predictor.call_overhead_ms;
    for (const auto& [key, predicted] : sums.predicted_ms) ms += predicted;
    return ms;
  }
  double ms = predictor.context_call_ms;
  for (const auto& [key, predicted] : sums.predicted_ms) {
    auto it = predictor.context.find(key);
    ms += it == predictor.context.end() ? predicted : it->second[0] * predicted + it->second[1] * sums.count.at(key);
  }
  return std::max(ms, predictor.call_overhead_ms);
}


Expected<LatencyPredictor> calibrate_latency(const CalibrationOptions& options, const std::function<void(const std::string&)>& progress) {
  if (options.threads < 1) return invalid_argument("calibrate: threads must be at least 1");
  if (options.kernels_per_type < 4) return invalid_argument("calibrate: at least 4 kernels per type");
  return capture([&]() -> LatencyPredictor {
    const int previous_threads = torch::get_num_threads();
    torch::set_num_threads(options.threads);
    torch::manual_seed(static_cast<std::uint64_t>(options.seed));
    LatencyPredictor predictor;
    predictor.threads = options.threads;
    {
      Module tiny = kernel_module("Call");
      tiny.define("def forward(self, x):\n  return torch.relu(x)\n");
      const GraphTimes call = time_kernel(tiny, torch::rand({1, 1, 1, 1}));
      predictor.optimized.call_overhead_ms = call.optimized;
      predictor.frozen.call_overhead_ms = call.frozen;
    }
    Sweep sweep(options.seed);
    std::map<std::string, std::vector<Sample>> by_key;
    auto add = [&](Sample s) { by_key[predictor_key(s.use)].push_back(std::move(s)); };
    const int n = options.kernels_per_type;
    for (int i = 0; i < 4 * n; ++i) add(sweep.conv(false));  // split between 1x1 and k x k
    if (progress) progress("conv: " + std::to_string(4 * n) + " kernels timed");
    for (int i = 0; i < n; ++i) add(sweep.conv(true));
    if (progress) progress("dwconv: " + std::to_string(n) + " kernels timed");
    for (int i = 0; i < n / 2; ++i) add(sweep.linear());
    for (const std::string kind : {"add", "concat", "pool", "pad", "elementwise"}) {
      for (int i = 0; i < n / 2; ++i) add(sweep.moving(kind));
    }
    if (progress) progress("linear, add, concat, pool, pad, elementwise timed");
    for (auto [graph, times] : {std::pair{&predictor.optimized, &GraphTimes::optimized}, std::pair{&predictor.frozen, &GraphTimes::frozen}}) {
      for (const auto& [key, samples] : by_key) {
        graph->coefficients[key] = fit(samples, times);
        graph->samples[key] = static_cast<int>(samples.size());
        std::vector<double> errors;
        for (const auto& s : samples) errors.push_back(std::abs(evaluate(graph->coefficients[key], s.use) - s.ms.*times) / (s.ms.*times));
        graph->fit_error[key] = median_of(errors);
      }
    }
    if (options.networks > 0) {
      std::mt19937_64 rng(options.seed * 7919 + 17);
      ScratchFolder scratch("calibrate");
      // Per graph the Classifier chose, the networks that ran it: their kernels priced by that
      // graph's isolated predictors.
      std::map<InferenceGraph, std::vector<NetworkSample>> networks;
      for (int timed = 0; timed < options.networks;) {
        std::vector<std::int64_t> shape;
        RandomNetwork builder(rng);
        Module net = builder.build(shape);
        auto graph = ChannelGraph::analyse(net, shape);
        if (!graph) throw Error(graph.status());
        std::int64_t macs = 0;
        for (const auto& k : graph->kernels()) macs += k.macs;
        if (macs > 600'000'000) continue;  // a few seconds to time at most
        const NetworkTiming timing = classifier_ms(net, shape, options.threads, builder.classes(), scratch);
        NetworkSample sample;
        sample.sums = type_sums(predictor.of(timing.graph), graph->kernels());
        sample.ms = timing.ms;
        networks[timing.graph == InferenceGraph::kFrozen ? InferenceGraph::kFrozen : InferenceGraph::kOptimized].push_back(std::move(sample));
        ++timed;
        if (progress) {
          char line[200];
          std::snprintf(line, sizeof line, "network %d: %zu kernels, %.1f M MACs, %.3f ms (%s graph)", timed, graph->kernels().size(),
                        static_cast<double>(macs) / 1e6, timing.ms, timing.graph == InferenceGraph::kFrozen ? "frozen" : "optimised");
          progress(line);
        }
      }
      for (auto& [which, samples] : networks) {
        // A context fit needs more networks than it has unknowns' worth of evidence; with fewer,
        // this graph keeps its isolated predictors.
        constexpr std::size_t kMinimumNetworks = 12;
        GraphLatency& g = which == InferenceGraph::kFrozen ? predictor.frozen : predictor.optimized;
        g.networks = static_cast<int>(samples.size());
        if (samples.size() < kMinimumNetworks) continue;
        fit_context(g, samples);
        std::vector<double> errors;
        for (const auto& n : samples) errors.push_back(std::abs(predict_from_sums(g, n.sums) - n.ms) / n.ms);
        g.network_fit_error = median_of(errors);
      }
    }
    torch::set_num_threads(previous_threads);
    return predictor;
  });
}

namespace {

nlohmann::json graph_to_json(const GraphLatency& g) {
  nlohmann::json kernels = nlohmann::json::object();
  for (const auto& [key, c] : g.coefficients) {
    kernels[key] = {{"coefficients", c}, {"samples", g.samples.count(key) ? g.samples.at(key) : 0},
                    {"median_fit_error", g.fit_error.count(key) ? g.fit_error.at(key) : 0.0}};
  }
  nlohmann::json out{{"call_overhead_ms", g.call_overhead_ms}, {"kernels", kernels}};
  if (!g.context.empty() || g.networks > 0) {
    nlohmann::json types = nlohmann::json::object();
    for (const auto& [key, c] : g.context) types[key] = {{"scale", c[0]}, {"ms_per_kernel", c[1]}};
    out["context"] = {{"networks", g.networks}, {"median_fit_error", g.network_fit_error}, {"call_ms", g.context_call_ms}, {"ridge", g.context_ridge}, {"types", types}};
  }
  return out;
}

GraphLatency graph_from_json(const nlohmann::json& m) {
  GraphLatency g;
  g.call_overhead_ms = m.value("call_overhead_ms", 0.0);
  for (const auto& [key, k] : m.at("kernels").items()) {
    g.coefficients[key] = k.at("coefficients").get<std::vector<double>>();
    g.samples[key] = k.value("samples", 0);
    g.fit_error[key] = k.value("median_fit_error", 0.0);
  }
  if (m.contains("context")) {
    const auto& c = m.at("context");
    g.networks = c.value("networks", 0);
    g.network_fit_error = c.value("median_fit_error", 0.0);
    g.context_call_ms = c.value("call_ms", 0.0);
    g.context_ridge = c.value("ridge", 1.0);
    for (const auto& [key, t] : c.at("types").items()) g.context[key] = {t.at("scale").get<double>(), t.at("ms_per_kernel").get<double>()};
  }
  return g;
}

}  // namespace

// The optimised graph's predictors at the top level (the form before graphs were told apart),
// the frozen graph's under "frozen".
nlohmann::json latency_predictor_to_json(const LatencyPredictor& p) {
  nlohmann::json out = graph_to_json(p.optimized);
  out["threads"] = p.threads;
  out["features"] = {"1", "MMACs", "M elements read + written", "M weights"};
  if (!p.frozen.coefficients.empty()) out["frozen"] = graph_to_json(p.frozen);
  return out;
}

Expected<LatencyPredictor> latency_predictor_from_json(const nlohmann::json& j, const std::string& origin) {
  const nlohmann::json& m = j.contains("latency_model") ? j["latency_model"] : j;
  if (!m.is_object() || !m.contains("kernels") || !m["kernels"].is_object()) {
    return invalid_argument(origin + ": no latency_model with kernels (write one with edgefleet device calibrate)");
  }
  LatencyPredictor p;
  try {
    p.threads = m.value("threads", 1);
    p.optimized = graph_from_json(m);
    if (m.contains("frozen")) p.frozen = graph_from_json(m.at("frozen"));
  } catch (const std::exception& e) {
    return invalid_argument(origin + ": malformed latency_model: " + e.what());
  }
  return p;
}

Expected<double> predict_latency_ms(const LatencyPredictor& predictor, const ModelCard& card, std::optional<InferenceGraph> graph) {
  if (card.format != ModelFormat::kTorchScript) return unsupported("predict: " + card.name + " is not a TorchScript model");
  if (!graph) {
    LoadOptions load;
    load.threads = predictor.threads;
    auto classifier = load_classifier(card, load);
    if (!classifier) return classifier.status();
    graph = (*classifier)->batch1_graph();
  }
  return capture([&]() -> double {
    Module module;
    try {
      module = torch::jit::load(card.model_path());
    } catch (const std::exception& e) {
      throw Error(corrupt("predict: cannot load " + card.model_path() + ": " + e.what()));
    }
    auto analysed = ChannelGraph::analyse(module, {1, card.input.channels(), card.input.height, card.input.width});
    if (!analysed) throw Error(Status(analysed.status().code(), card.name + ": " + analysed.status().message()));
    return predicted_kernels_ms(predictor, analysed->kernels(), *graph).value();
  });
}

Expected<double> predicted_kernels_ms(const LatencyPredictor& predictor, const std::vector<KernelUse>& kernels, InferenceGraph graph) {
  return capture([&] {
    const GraphLatency& g = predictor.of(graph);
    return predict_from_sums(g, type_sums(g, kernels));
  });
}

}  // namespace edgefleet
