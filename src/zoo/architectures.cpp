// ArchSpec JSON, channel groups and the TorchScript module generator.
#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "edgefleet/arch_cost.h"
#include "edgefleet/architecture.h"
#include "zoo/module_builder.h"

namespace edgefleet {
namespace {

using nlohmann::json;

const std::map<std::string, LayerKind> kLayerKinds = {{"conv", LayerKind::kConv},
                                                      {"inverted_residual", LayerKind::kInvertedResidual},
                                                      {"basic_residual", LayerKind::kBasicResidual},
                                                      {"maxpool", LayerKind::kMaxPool}};

std::string kind_name(LayerKind kind) {
  for (const auto& [name, value] : kLayerKinds) {
    if (value == kind) return name;
  }
  return "?";
}

bool has_identity_shortcut(const LayerSpec& layer, int in_channels) {
  if (layer.identity >= 0) return layer.identity == 1;
  return layer.stride == 1 && layer.out == in_channels;
}

enum class Init { kConvKaiming, kOnes, kZeros, kLinear };

struct TensorDecl {
  std::string name;
  std::vector<std::int64_t> shape;
  Init init;
  bool buffer;
};

// Walks a spec once, emitting tensor declarations, TorchScript lines and channel groups.
class Generator {
 public:
  explicit Generator(const ArchSpec& spec) : spec_(spec) {
    groups_.push_back({"input", spec.in_channels, false, {}});
    current_ = 0;
    channels_ = spec.in_channels;
    size_ = spec.input_size;
    lines_.push_back("x = (x - " + number(spec.mean) + ") / " + number(spec.std));
    for (std::size_t i = 0; i < spec.layers.size(); ++i) {
      layer_begin_.push_back(lines_.size());
      emit_layer("l" + std::to_string(i), spec.layers[i]);
    }
    layer_begin_.push_back(lines_.size());  // the head
    lines_.push_back("x = torch.mean(x, [2, 3])");
    if (spec.embedding > 0) {
      const std::string name = "emb";
      declare(name + "_w", {spec.embedding, channels_}, Init::kLinear);
      declare(name + "_b", {spec.embedding}, Init::kZeros);
      consume(name + "_w", 1);
      new_group(name, spec.embedding, {{name + "_w", 0}, {name + "_b", 0}});
      linear_cost(name, channels_, spec.embedding);
      lines_.push_back("x = torch.relu(torch.linear(x, self." + name + "_w, self." + name + "_b))");
      channels_ = spec.embedding;
    }
    declare("fc_w", {spec.classes, channels_}, Init::kLinear);
    declare("fc_b", {spec.classes}, Init::kZeros);
    consume("fc_w", 1);
    linear_cost("fc", channels_, spec.classes);
  }

  std::string source() const {
    std::ostringstream out;
    out << "def features(self, x):\n";
    for (const auto& line : lines_) out << "    " << line << "\n";
    out << "    return x\n\n";
    out << "def forward(self, x):\n";
    out << "    return torch.linear(self.features(x), self.fc_w, self.fc_b)\n";
    return out.str();
  }
  // The lines of layers [first, last) (last = layers.size() + 1 includes the head's pooling
  // and embedding; first = 0 includes the input normalisation), each prefixed with `indent`
  // and with "self." replaced by "self." + `prefix`.
  std::string lines(std::size_t first, std::size_t last, const std::string& indent, const std::string& prefix) const {
    const std::size_t begin = first == 0 ? 0 : layer_begin_[first];
    const std::size_t end = last >= layer_begin_.size() ? lines_.size() : layer_begin_[last];
    std::ostringstream out;
    for (std::size_t i = begin; i < end; ++i) {
      std::string line = lines_[i];
      for (std::size_t at = line.find("self."); at != std::string::npos; at = line.find("self.", at + 5 + prefix.size())) {
        if (line.compare(at, 13, "self.training") == 0) continue;
        line.insert(at + 5, prefix);
      }
      out << indent << line << "\n";
    }
    return out.str();
  }
  const std::vector<TensorDecl>& tensors() const { return tensors_; }
  const std::vector<ChannelGroup>& groups() const { return groups_; }
  const ArchCost& cost() const { return cost_; }

 private:
  void add_cost(LayerCost layer) {
    cost_.macs += layer.macs;
    cost_.params += layer.params;
    const std::int64_t alive = 4 * (layer.input_elements + layer.output_elements + held_elements_);
    cost_.peak_activation_bytes = std::max(cost_.peak_activation_bytes, alive);
    cost_.layers.push_back(std::move(layer));
  }
  void linear_cost(const std::string& name, int in, int out) {
    add_cost({name, std::int64_t{in} * out, std::int64_t{in} * out + out, in, out});
  }
  static std::string number(double v) {
    std::ostringstream out;
    out.precision(17);
    out << v;
    std::string s = out.str();
    if (s.find_first_of(".e") == std::string::npos) s += ".0";
    return s;
  }

  void declare(const std::string& name, std::vector<std::int64_t> shape, Init init, bool buffer = false) {
    tensors_.push_back({name, std::move(shape), init, buffer});
  }
  // The current tensor's channels are read by `tensor` along `dim`.
  void consume(const std::string& tensor, int dim) { groups_[current_].members.push_back({tensor, dim}); }
  void new_group(const std::string& name, int channels, std::vector<TensorSlice> members) {
    groups_.push_back({name, channels, true, std::move(members)});
    current_ = groups_.size() - 1;
  }

  // conv + BN (+ activation) on variable `var`; the output joins `join_group` when >= 0.
  void conv_bn(const std::string& name, const std::string& var, int out, int kernel, int stride, bool depthwise,
               const std::string& activation, long join_group = -1, const std::string& padding = "symmetric") {
    const int in = channels_;
    const int groups = depthwise ? in : 1;
    if (depthwise) out = in;
    declare(name + "_w", {out, in / groups, kernel, kernel}, Init::kConvKaiming);
    declare(name + "_g", {out}, Init::kOnes);
    declare(name + "_b", {out}, Init::kZeros);
    declare(name + "_rm", {out}, Init::kZeros, true);
    declare(name + "_rv", {out}, Init::kOnes, true);
    std::vector<TensorSlice> outputs = {{name + "_w", 0}, {name + "_g", 0}, {name + "_b", 0}, {name + "_rm", 0}, {name + "_rv", 0}};
    if (depthwise) {
      // Depthwise: channel c in is channel c out; the group carries through.
      for (auto& slice : outputs) groups_[current_].members.push_back(slice);
    } else {
      consume(name + "_w", 1);
      if (join_group >= 0) {
        for (auto& slice : outputs) groups_[join_group].members.push_back(slice);
        current_ = static_cast<std::size_t>(join_group);
      } else {
        new_group(name, out, std::move(outputs));
      }
    }
    int pad = kernel / 2;
    const int in_size = size_;
    if (padding == "same") {
      pad = 0;
      const int same_size = (size_ + stride - 1) / stride;
      const int total = std::max((same_size - 1) * stride + kernel - size_, 0);
      if (total > 0) {
        const int before = total / 2;
        std::ostringstream line;
        line << var << " = torch.constant_pad_nd(" << var << ", [" << before << ", " << total - before << ", " << before << ", "
             << total - before << "], 0.0)";
        lines_.push_back(line.str());
      }
      size_ += total;
    }
    size_ = (size_ + 2 * pad - kernel) / stride + 1;
    const std::int64_t out_elements = std::int64_t{out} * size_ * size_;
    add_cost({name, std::int64_t{in / groups} * kernel * kernel * out_elements, std::int64_t{out} * (in / groups) * kernel * kernel + 2 * out,
              std::int64_t{in} * in_size * in_size, out_elements});
    std::ostringstream line;
    line << var << " = torch.conv2d(" << var << ", self." << name << "_w, None, [" << stride << ", " << stride << "], ["
         << pad << ", " << pad << "], [1, 1], " << groups << ")";
    lines_.push_back(line.str());
    lines_.push_back(var + " = torch.batch_norm(" + var + ", self." + name + "_g, self." + name + "_b, self." + name +
                     "_rm, self." + name + "_rv, self.training, 0.1, " + number(spec_.bn_eps) + ", False)");
    if (activation == "relu") {
      lines_.push_back(var + " = torch.relu(" + var + ")");
    } else if (activation == "relu6") {
      lines_.push_back(var + " = torch.clamp(" + var + ", 0.0, 6.0)");
    } else if (activation == "leaky") {
      lines_.push_back(var + " = torch.leaky_relu(" + var + ", " + number(spec_.leaky_slope) + ")");
    }
    channels_ = out;
  }

  void emit_layer(const std::string& name, const LayerSpec& layer) {
    switch (layer.kind) {
      case LayerKind::kConv:
        conv_bn(name, "x", layer.out, layer.kernel, layer.stride, layer.depthwise, layer.activation, -1, layer.padding);
        break;
      case LayerKind::kMaxPool:
        size_ = layer.ceil_mode ? (size_ - layer.kernel + layer.stride - 1) / layer.stride + 1 : (size_ - layer.kernel) / layer.stride + 1;
        lines_.push_back("x = torch.max_pool2d(x, [" + std::to_string(layer.kernel) + ", " + std::to_string(layer.kernel) +
                         "], [" + std::to_string(layer.stride) + ", " + std::to_string(layer.stride) + "], [0, 0], [1, 1], " +
                         (layer.ceil_mode ? "True" : "False") + ")");
        break;
      case LayerKind::kInvertedResidual: {
        const bool identity = has_identity_shortcut(layer, channels_);
        const std::size_t input_group = current_;
        if (identity) lines_.push_back("r = x");
        if (identity) held_elements_ = std::int64_t{channels_} * size_ * size_;
        if (layer.expand > 0) conv_bn(name + "_exp", "x", layer.expand, 1, 1, false, "relu6");
        conv_bn(name + "_dw", "x", 0, 3, layer.stride, true, "relu6");
        conv_bn(name + "_prj", "x", layer.out, 1, 1, false, "none", identity ? static_cast<long>(input_group) : -1);
        if (identity) lines_.push_back("x = x + r");
        held_elements_ = 0;
        break;
      }
      case LayerKind::kBasicResidual: {
        const bool identity = has_identity_shortcut(layer, channels_);
        const std::size_t input_group = current_;
        const int in_channels = channels_;
        const int in_size = size_;
        lines_.push_back("r = x");
        held_elements_ = std::int64_t{channels_} * size_ * size_;
        conv_bn(name + "_c1", "x", layer.mid > 0 ? layer.mid : layer.out, 3, layer.stride, false, "relu");
        if (identity) {
          conv_bn(name + "_c2", "x", layer.out, 3, 1, false, "none", static_cast<long>(input_group));
        } else {
          conv_bn(name + "_c2", "x", layer.out, 3, 1, false, "none");
          const std::size_t output_group = current_;
          // The projection shortcut reads the block input and writes the block output group.
          current_ = input_group;
          channels_ = in_channels;
          const int out_size = size_;
          size_ = in_size;
          conv_bn(name + "_sc", "r", layer.out, 1, layer.stride, false, "none", static_cast<long>(output_group));
          size_ = out_size;
        }
        held_elements_ = 0;
        lines_.push_back("x = torch.relu(x + r)");
        break;
      }
    }
  }

  const ArchSpec& spec_;
  std::vector<TensorDecl> tensors_;
  std::vector<std::string> lines_;
  std::vector<std::size_t> layer_begin_;  // first line of each layer, then of the head
  std::vector<ChannelGroup> groups_;
  std::size_t current_ = 0;
  int channels_ = 0;
  int size_ = 0;                     // spatial height = width of the current tensor
  std::int64_t held_elements_ = 0;   // a residual block's saved input
  ArchCost cost_;
};

torch::Tensor initial_value(const TensorDecl& decl, torch::Generator& generator) {
  switch (decl.init) {
    case Init::kOnes: return torch::ones(decl.shape);
    case Init::kZeros: return torch::zeros(decl.shape);
    case Init::kConvKaiming: {
      // fan_out mode, as torchvision initialises convs.
      const double fan_out = static_cast<double>(decl.shape[0] * decl.shape[2] * decl.shape[3]);
      return at::normal(0.0, std::sqrt(2.0 / fan_out), decl.shape, generator);
    }
    case Init::kLinear: {
      const double bound = 1.0 / std::sqrt(static_cast<double>(decl.shape[1]));
      return at::rand(decl.shape, generator) * (2 * bound) - bound;
    }
  }
  return {};
}

}  // namespace

void to_json(json& j, const ArchSpec& spec) {
  json layers = json::array();
  for (const auto& layer : spec.layers) {
    json l = {{"kind", kind_name(layer.kind)}};
    switch (layer.kind) {
      case LayerKind::kConv:
        l["out"] = layer.out;
        l["kernel"] = layer.kernel;
        l["stride"] = layer.stride;
        l["depthwise"] = layer.depthwise;
        l["activation"] = layer.activation;
        if (layer.padding != "symmetric") l["padding"] = layer.padding;
        break;
      case LayerKind::kInvertedResidual:
        l["out"] = layer.out;
        l["expand"] = layer.expand;
        l["stride"] = layer.stride;
        if (layer.identity >= 0) l["identity"] = layer.identity == 1;
        break;
      case LayerKind::kBasicResidual:
        l["out"] = layer.out;
        l["stride"] = layer.stride;
        if (layer.mid > 0) l["mid"] = layer.mid;
        if (layer.identity >= 0) l["identity"] = layer.identity == 1;
        break;
      case LayerKind::kMaxPool:
        l["kernel"] = layer.kernel;
        l["stride"] = layer.stride;
        l["ceil_mode"] = layer.ceil_mode;
        break;
    }
    layers.push_back(l);
  }
  j = {{"family", spec.family},       {"in_channels", spec.in_channels}, {"input_size", spec.input_size},
       {"classes", spec.classes},     {"mean", spec.mean},               {"std", spec.std},
       {"embedding", spec.embedding}, {"layers", layers}};
  // Written only when not the default, so that existing cards' specs stay byte-identical.
  if (spec.bn_eps != 1e-5) j["bn_eps"] = spec.bn_eps;
  if (spec.leaky_slope != 0.1) j["leaky_slope"] = spec.leaky_slope;
}

Expected<ArchSpec> arch_spec_from_json(const json& j) {
  return capture([&]() -> ArchSpec {
    auto fail = [](const std::string& what) { throw Error(invalid_argument("architecture: " + what)); };
    if (!j.is_object()) fail("expected a JSON object");
    ArchSpec spec;
    spec.family = j.value("family", "");
    spec.in_channels = j.value("in_channels", 1);
    spec.input_size = j.value("input_size", 28);
    spec.classes = j.value("classes", 10);
    spec.mean = j.value("mean", 0.0f);
    spec.std = j.value("std", 1.0f);
    spec.embedding = j.value("embedding", 0);
    spec.bn_eps = j.value("bn_eps", 1e-5);
    spec.leaky_slope = j.value("leaky_slope", 0.1);
    if (!(spec.bn_eps > 0)) fail("bn_eps must be positive");
    if (spec.in_channels <= 0 || spec.classes <= 1 || spec.input_size <= 0) fail("in_channels, classes, input_size must be positive");
    if (!(spec.std > 0)) fail("std must be positive");
    if (!j.contains("layers") || !j["layers"].is_array() || j["layers"].empty()) fail("'layers' must be a non-empty list");
    for (std::size_t i = 0; i < j["layers"].size(); ++i) {
      const json& l = j["layers"][i];
      const std::string where = "layers[" + std::to_string(i) + "]";
      const std::string kind = l.value("kind", "");
      const auto found = kLayerKinds.find(kind);
      if (found == kLayerKinds.end()) fail(where + ".kind '" + kind + "' is not one of conv, inverted_residual, basic_residual, maxpool");
      LayerSpec layer;
      layer.kind = found->second;
      layer.out = l.value("out", 0);
      layer.expand = l.value("expand", 0);
      layer.kernel = l.value("kernel", layer.kind == LayerKind::kMaxPool ? 2 : 3);
      layer.stride = l.value("stride", layer.kind == LayerKind::kMaxPool ? 2 : 1);
      layer.depthwise = l.value("depthwise", false);
      layer.activation = l.value("activation", "relu");
      layer.ceil_mode = l.value("ceil_mode", false);
      layer.mid = l.value("mid", 0);
      layer.padding = l.value("padding", "symmetric");
      if (layer.padding != "symmetric" && layer.padding != "same") fail(where + ".padding '" + layer.padding + "' is not one of symmetric, same");
      if (l.contains("identity")) {
        if (!l["identity"].is_boolean()) fail(where + ".identity must be true or false");
        layer.identity = l["identity"].get<bool>() ? 1 : 0;
      }
      if (layer.mid < 0 || layer.expand < 0) fail(where + ": mid and expand must not be negative");
      if (layer.kind != LayerKind::kMaxPool && !layer.depthwise && layer.out <= 0) fail(where + ".out must be positive");
      if (layer.stride <= 0 || layer.kernel <= 0) fail(where + ": stride and kernel must be positive");
      if (layer.activation != "relu" && layer.activation != "relu6" && layer.activation != "leaky" && layer.activation != "none") {
        fail(where + ".activation '" + layer.activation + "' is not one of relu, relu6, leaky, none");
      }
      spec.layers.push_back(layer);
    }
    return spec;
  });
}

std::vector<ChannelGroup> channel_groups(const ArchSpec& spec) { return Generator(spec).groups(); }

std::string generated_source(const ArchSpec& spec) { return Generator(spec).source(); }

SplitSource split_source(const ArchSpec& spec, std::size_t base_layers, const std::string& tail_prefix) {
  const Generator generator(spec);
  const std::size_t layers = spec.layers.size();
  base_layers = std::min(base_layers, layers);
  return {generator.lines(0, base_layers, "    ", ""),
          generator.lines(base_layers, layers + 1, "    ", tail_prefix) + "    return torch.linear(x, self." + tail_prefix + "fc_w, self." + tail_prefix + "fc_b)\n"};
}

ArchCost arch_cost(const ArchSpec& spec) { return Generator(spec).cost(); }

Expected<double> estimated_latency_ms(const ArchCost& cost, const Hardware& hardware, LatencyModel model) {
  if (!(hardware.peak_gflops > 0) || !(hardware.memory_bandwidth_gbs > 0)) {
    return invalid_argument("latency estimate: the hardware needs peak_gflops and memory_bandwidth_gbs");
  }
  double seconds = 0.0;
  for (const auto& layer : cost.layers) {
    const double bytes = 4.0 * static_cast<double>(layer.input_elements + layer.output_elements + layer.params);
    const double memory = bytes / (hardware.memory_bandwidth_gbs * 1e9);
    const double compute = 2.0 * static_cast<double>(layer.macs) / (hardware.peak_gflops * 1e9);
    seconds += model == LatencyModel::kSum ? memory + compute : std::max(memory, compute);
  }
  return seconds * 1e3;
}

torch::jit::Module build_module(const ArchSpec& spec, std::uint64_t seed) {
  Generator generator(spec);
  torch::jit::Module module("edgefleet." + (spec.family.empty() ? std::string("model") : spec.family));
  module.register_attribute("training", c10::BoolType::get(), true);
  module.register_attribute("arch_json", c10::StringType::get(), json(spec).dump());
  auto rng = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  for (const auto& decl : generator.tensors()) {
    torch::Tensor value = initial_value(decl, rng);
    if (decl.buffer) {
      module.register_buffer(decl.name, value);
    } else {
      module.register_parameter(decl.name, value.set_requires_grad(true), false);
    }
  }
  module.define(generator.source());
  return module;
}

Expected<ArchSpec> arch_spec_of(const torch::jit::Module& module) {
  if (!module.hasattr("arch_json")) return not_found("module has no 'arch_json' attribute (not an edgefleet zoo model)");
  json j = json::parse(module.attr("arch_json").toStringRef(), nullptr, false);
  if (j.is_discarded()) return corrupt("module's 'arch_json' attribute is not valid JSON");
  return arch_spec_from_json(j);
}

}  // namespace edgefleet
