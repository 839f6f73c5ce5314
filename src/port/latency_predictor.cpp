#include "edgefleet/latency_predictor.h"

#include <torch/csrc/jit/api/module.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "core/elapsed.h"
#include "core/median.h"
#include "port/channel_graph.h"

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

// Median ms of one forward through the graph the classifier runs (frozen, optimised).
double time_kernel(Module module, const torch::Tensor& input) {
  module.eval();
  Module to_optimize = torch::jit::freeze(module.clone());
  Module frozen = torch::jit::optimize_for_inference(to_optimize);
  torch::InferenceMode guard;
  for (int i = 0; i < 3; ++i) frozen.forward({input});
  auto start = std::chrono::steady_clock::now();
  frozen.forward({input});
  const double once = std::max(seconds_since(start), 1e-6);
  const int runs = std::clamp(static_cast<int>(0.02 / once), 5, 400);
  std::vector<double> per_run;
  for (int repeat = 0; repeat < 5; ++repeat) {
    start = std::chrono::steady_clock::now();
    for (int i = 0; i < runs; ++i) frozen.forward({input});
    per_run.push_back(seconds_since(start) * 1e3 / runs);
  }
  return median_of(per_run);
}

Module kernel_module(const std::string& name) {
  Module m(name);
  m.register_attribute("training", c10::BoolType::get(), false);
  return m;
}

struct Sample {
  KernelUse use;
  double ms = 0.0;
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

// Weighted least squares on relative error: rows f_i / y_i against 1. Columns no sample uses
// (e.g. weights of an add) are left at zero.
std::vector<double> fit(const std::vector<Sample>& samples) {
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
    for (std::size_t j = 0; j < kept.size(); ++j) a[static_cast<std::int64_t>(i)][static_cast<std::int64_t>(j)] = f[kept[j]] / samples[i].ms;
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

}  // namespace

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
      predictor.call_overhead_ms = time_kernel(tiny, torch::rand({1, 1, 1, 1}));
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
    for (const auto& [key, samples] : by_key) {
      predictor.coefficients[key] = fit(samples);
      predictor.samples[key] = static_cast<int>(samples.size());
      std::vector<double> errors;
      for (const auto& s : samples) errors.push_back(std::abs(evaluate(predictor.coefficients[key], s.use) - s.ms) / s.ms);
      predictor.fit_error[key] = median_of(errors);
    }
    torch::set_num_threads(previous_threads);
    return predictor;
  });
}

nlohmann::json latency_predictor_to_json(const LatencyPredictor& p) {
  nlohmann::json kernels = nlohmann::json::object();
  for (const auto& [key, c] : p.coefficients) {
    kernels[key] = {{"coefficients", c}, {"samples", p.samples.count(key) ? p.samples.at(key) : 0},
                    {"median_fit_error", p.fit_error.count(key) ? p.fit_error.at(key) : 0.0}};
  }
  return {{"threads", p.threads},
          {"call_overhead_ms", p.call_overhead_ms},
          {"features", {"1", "MMACs", "M elements read + written", "M weights"}},
          {"kernels", kernels}};
}

Expected<LatencyPredictor> latency_predictor_from_json(const nlohmann::json& j, const std::string& origin) {
  const nlohmann::json& m = j.contains("latency_model") ? j["latency_model"] : j;
  if (!m.is_object() || !m.contains("kernels") || !m["kernels"].is_object()) {
    return invalid_argument(origin + ": no latency_model with kernels (write one with edgefleet device calibrate)");
  }
  LatencyPredictor p;
  try {
    p.threads = m.value("threads", 1);
    p.call_overhead_ms = m.value("call_overhead_ms", 0.0);
    for (const auto& [key, k] : m["kernels"].items()) {
      p.coefficients[key] = k.at("coefficients").get<std::vector<double>>();
      p.samples[key] = k.value("samples", 0);
      p.fit_error[key] = k.value("median_fit_error", 0.0);
    }
  } catch (const std::exception& e) {
    return invalid_argument(origin + ": malformed latency_model: " + e.what());
  }
  return p;
}

Expected<double> predict_latency_ms(const LatencyPredictor& predictor, const ModelCard& card) {
  if (card.format != ModelFormat::kTorchScript) return unsupported("predict: " + card.name + " is not a TorchScript model");
  return capture([&]() -> double {
    Module module;
    try {
      module = torch::jit::load(card.model_path());
    } catch (const std::exception& e) {
      throw Error(corrupt("predict: cannot load " + card.model_path() + ": " + e.what()));
    }
    auto graph = ChannelGraph::analyse(module, {1, card.input.channels(), card.input.height, card.input.width});
    if (!graph) throw Error(Status(graph.status().code(), card.name + ": " + graph.status().message()));
    double ms = predictor.call_overhead_ms;
    for (const auto& k : graph->kernels()) {
      auto it = predictor.coefficients.find(predictor_key(k));
      if (it == predictor.coefficients.end()) throw Error(invalid_argument("predict: the latency model has no '" + predictor_key(k) + "' kernel"));
      ms += std::max(0.0, evaluate(it->second, k) - predictor.call_overhead_ms);
    }
    return ms;
  });
}

}  // namespace edgefleet
