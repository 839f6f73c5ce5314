#include "port/channel_pruning.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include "zoo/module_builder.h"

namespace edgefleet {
namespace {

// Residual layers' shortcut kinds made explicit, so that narrower widths cannot turn a
// projection shortcut into an identity one (or back).
ArchSpec with_fixed_shortcuts(ArchSpec spec) {
  int channels = spec.in_channels;
  for (auto& layer : spec.layers) {
    switch (layer.kind) {
      case LayerKind::kConv:
        if (!layer.depthwise) channels = layer.out;
        break;
      case LayerKind::kMaxPool:
        break;
      case LayerKind::kInvertedResidual:
      case LayerKind::kBasicResidual:
        if (layer.identity < 0) layer.identity = layer.stride == 1 && layer.out == channels ? 1 : 0;
        channels = layer.out;
        break;
    }
  }
  return spec;
}

// A generated layer name split into its spec layer and its part: "l3" -> {3, ""},
// "l5_exp" -> {5, "exp"}; nullopt for other names ("emb", "fc") or indices past the spec.
struct LayerName {
  std::size_t index = 0;
  std::string part;
};
std::optional<LayerName> parse_layer_name(const std::string& layer, std::size_t layers) {
  if (layer.size() < 2 || layer[0] != 'l') return std::nullopt;
  const std::size_t underscore = layer.find('_');
  const std::string digits = layer.substr(1, underscore == std::string::npos ? std::string::npos : underscore - 1);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const std::size_t index = std::stoul(digits);
  if (index >= layers) return std::nullopt;
  return LayerName{index, underscore == std::string::npos ? "" : layer.substr(underscore + 1)};
}

// The spec field a conv or linear layer's output width is stored in, or nullptr for layers
// whose width follows their input (depthwise convs, projection shortcuts).
int* width_field(ArchSpec& spec, const std::string& layer) {
  if (layer == "emb") return &spec.embedding;
  const auto name = parse_layer_name(layer, spec.layers.size());
  if (!name) return nullptr;
  LayerSpec& l = spec.layers[name->index];
  const std::string& part = name->part;
  if (part.empty()) return l.kind == LayerKind::kConv && !l.depthwise ? &l.out : nullptr;
  if (part == "exp") return &l.expand;
  if (part == "prj" || part == "c2") return &l.out;
  if (part == "c1") return &l.mid;
  return nullptr;  // dw, sc
}

std::string layer_of(const std::string& tensor) { return tensor.substr(0, tensor.rfind('_')); }

bool is_weight(const std::string& tensor) { return tensor.size() > 2 && tensor.compare(tensor.size() - 2, 2, "_w") == 0; }

// The plain conv layer ("l<i>") that writes a group's channels last, or nullptr when the
// group ends elsewhere (residual blocks, dense layers).
const LayerSpec* plain_conv_layer(const ArchSpec& spec, const std::string& layer) {
  const auto name = parse_layer_name(layer, spec.layers.size());
  if (!name || !name->part.empty()) return nullptr;
  const LayerSpec& l = spec.layers[name->index];
  return l.kind == LayerKind::kConv ? &l : nullptr;
}

torch::Tensor activated(const torch::Tensor& x, const std::string& activation, double slope) {
  if (activation == "relu") return x.clamp_min(0.0);
  if (activation == "relu6") return x.clamp(0.0, 6.0);
  if (activation == "leaky") return torch::where(x > 0, x, x * slope);
  return x;
}

// A removed channel still fed its consumers its mean output; without it they would see a
// shifted input. For groups a plain conv layer ends, that mean (the activation of the
// batch norm's shift, exact for the near-constant channels pruning removes) is folded into
// each consumer: a conv's batch-norm running mean, a dense layer's bias.
void compensate_removed(const ArchSpec& spec, const ChannelGroup& group, const std::vector<std::int64_t>& kept,
                        std::map<std::string, torch::Tensor>& tensors) {
  std::string last_writer;
  for (const auto& member : group.members) {
    if (member.dim == 0 && is_weight(member.tensor)) last_writer = layer_of(member.tensor);
  }
  const LayerSpec* layer = plain_conv_layer(spec, last_writer);
  if (layer == nullptr || !tensors.count(last_writer + "_b")) return;
  torch::Tensor removed_mean = activated(tensors.at(last_writer + "_b"), layer->activation, spec.leaky_slope);
  torch::Tensor removed = torch::ones({group.channels}, torch::kBool);
  removed.index_fill_(0, torch::tensor(kept, torch::kInt64), false);
  removed_mean = removed_mean * removed.to(torch::kFloat32);
  for (const auto& member : group.members) {
    if (member.dim != 1 || !is_weight(member.tensor)) continue;
    const std::string consumer = layer_of(member.tensor);
    const torch::Tensor& w = tensors.at(member.tensor);
    // Per output: sum over removed inputs (and the kernel window) of weight * mean input.
    const torch::Tensor shift = (w.dim() == 4 ? w.sum({2, 3}) : w).matmul(removed_mean);
    if (w.dim() == 4 && tensors.count(consumer + "_rm")) {
      tensors[consumer + "_rm"] = tensors[consumer + "_rm"] - shift;
    } else if (w.dim() == 2 && tensors.count(consumer + "_b")) {
      tensors[consumer + "_b"] = tensors[consumer + "_b"] + shift;
    }
  }
}

}  // namespace

Expected<PrunableModel> graph_model(const torch::jit::Module& module, const std::vector<std::int64_t>& input_shape,
                                    const torch::Tensor& probe) {
  auto graph = ChannelGraph::analyse(module, input_shape, probe);
  if (!graph) return graph.status();
  PrunableModel out;
  out.graph = std::make_shared<const ChannelGraph>(std::move(*graph));
  out.module = out.graph->module();
  if (!module.is_training()) out.module.eval();
  return out;
}

std::map<std::string, int> group_widths(const PrunableModel& model) {
  return model.graph ? model.graph->widths() : group_widths(model.spec);
}

ArchCost cost_at(const PrunableModel& model, const std::map<std::string, int>& widths) {
  return model.graph ? model.graph->cost(widths) : arch_cost(spec_with_widths(model.spec, widths).value());
}

std::vector<KernelUse> kernels_at(const PrunableModel& model, const std::map<std::string, int>& widths) {
  if (model.graph) return model.graph->kernels(widths);
  // A zoo spec: the narrower network built (random weights: kernels do not depend on them).
  const ArchSpec spec = spec_with_widths(model.spec, widths).value();
  auto graph = ChannelGraph::analyse(build_module(spec, 0), {1, spec.in_channels, spec.input_size, spec.input_size});
  if (!graph) throw Error(graph.status());
  return graph->kernels();
}

std::map<std::string, std::vector<torch::Tensor>> batch_norm_scales(const PrunableModel& model) {
  if (model.graph) return model.graph->batch_norm_scales();
  std::map<std::string, std::vector<torch::Tensor>> out;
  for (const auto& group : channel_groups(model.spec)) {
    if (!group.prunable) continue;
    for (const auto& member : group.members) {
      if (member.tensor.size() > 2 && member.tensor.compare(member.tensor.size() - 2, 2, "_g") == 0) {
        out[group.name].push_back(model.module.attr(member.tensor).toTensor());
      }
    }
  }
  return out;
}

std::map<std::string, int> group_widths(const ArchSpec& spec) {
  std::map<std::string, int> widths;
  for (const auto& group : channel_groups(spec)) {
    if (group.prunable) widths[group.name] = group.channels;
  }
  return widths;
}

Expected<ArchSpec> spec_with_widths(const ArchSpec& spec, const std::map<std::string, int>& widths) {
  return capture([&] {
    ArchSpec out = with_fixed_shortcuts(spec);
    std::set<std::string> seen;
    for (const auto& group : channel_groups(out)) {
      const auto found = widths.find(group.name);
      if (found == widths.end()) continue;
      if (!group.prunable) throw Error(invalid_argument("channel group '" + group.name + "' cannot be pruned"));
      if (found->second < 1) throw Error(invalid_argument("channel group '" + group.name + "' needs at least one channel"));
      seen.insert(group.name);
      for (const auto& member : group.members) {
        if (member.dim != 0 || !is_weight(member.tensor)) continue;
        if (int* field = width_field(out, layer_of(member.tensor))) *field = found->second;
      }
    }
    for (const auto& [name, width] : widths) {
      if (!seen.count(name)) throw Error(invalid_argument("no channel group named '" + name + "'"));
    }
    return out;
  });
}

Expected<PrunableModel> prune_channels(const PrunableModel& model, const std::map<std::string, std::vector<std::int64_t>>& keep) {
  if (model.graph) {
    auto pruned = model.graph->prune(keep);
    if (!pruned) return pruned.status();
    if (!model.module.is_training()) pruned->eval();
    return graph_model(*pruned, model.graph->input_shape(), model.graph->probe());
  }
  return capture([&] {
    torch::NoGradGuard no_grad;
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& p : model.module.named_parameters(/*recurse=*/false)) tensors[p.name] = p.value.detach();
    for (const auto& b : model.module.named_buffers(/*recurse=*/false)) tensors[b.name] = b.value.detach();
    std::map<std::string, int> widths;
    const auto groups = channel_groups(model.spec);
    for (const auto& [name, channels] : keep) {
      if (std::none_of(groups.begin(), groups.end(), [&](const ChannelGroup& g) { return g.prunable && g.name == name; })) {
        throw Error(invalid_argument("no prunable channel group named '" + name + "'"));
      }
    }
    for (const auto& group : groups) {
      const auto found = keep.find(group.name);
      if (found == keep.end()) continue;
      const auto& channels = found->second;
      if (channels.empty()) throw Error(invalid_argument("channel group '" + group.name + "' needs at least one channel"));
      for (std::size_t i = 0; i < channels.size(); ++i) {
        if (channels[i] < 0 || channels[i] >= group.channels || (i > 0 && channels[i] <= channels[i - 1])) {
          throw Error(invalid_argument("channel group '" + group.name + "': kept channels must be ascending, distinct and below " +
                                       std::to_string(group.channels)));
        }
      }
      if (static_cast<int>(channels.size()) < group.channels) compensate_removed(model.spec, group, channels, tensors);
      const torch::Tensor index = torch::tensor(channels, torch::kInt64);
      for (const auto& member : group.members) {
        auto& t = tensors.at(member.tensor);
        t = t.index_select(member.dim, index);
      }
      widths[group.name] = static_cast<int>(channels.size());
    }
    PrunableModel out;
    out.spec = spec_with_widths(model.spec, widths).value();
    out.module = build_module(out.spec, 0);
    for (const auto& p : out.module.named_parameters(false)) {
      const auto& source = tensors.at(p.name);
      if (source.sizes() != p.value.sizes()) throw Error(internal_error("pruning: tensor '" + p.name + "' has a shape that does not fit the pruned spec"));
      p.value.copy_(source);
    }
    for (const auto& b : out.module.named_buffers(false)) b.value.copy_(tensors.at(b.name));
    if (!model.module.is_training()) out.module.eval();
    return out;
  });
}

PrunableModel clone_model(const PrunableModel& model) {
  if (model.graph) {
    auto copy = graph_model(model.module, model.graph->input_shape(), model.graph->probe()).value();
    copy.module.train(model.module.is_training());
    return copy;
  }
  auto copy = prune_channels(model, {}).value();
  if (model.module.is_training()) copy.module.train();
  return copy;
}

std::map<std::string, torch::Tensor> filter_l1_norms(const PrunableModel& model) {
  if (model.graph) return model.graph->filter_l1_norms();
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> norms;
  for (const auto& group : channel_groups(model.spec)) {
    if (!group.prunable) continue;
    torch::Tensor sum = torch::zeros({group.channels});
    for (const auto& member : group.members) {
      if (member.dim != 0 || !is_weight(member.tensor)) continue;
      const torch::Tensor w = model.module.attr(member.tensor).toTensor();
      sum += w.abs().reshape({w.size(0), -1}).sum(1) / static_cast<double>(w[0].numel());
    }
    norms[group.name] = sum;
  }
  return norms;
}

std::map<std::string, torch::Tensor> channel_saliency(const PrunableModel& model) {
  if (model.graph) return model.graph->saliency();
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> saliency;
  const double eps = model.spec.bn_eps;
  for (const auto& group : channel_groups(model.spec)) {
    if (!group.prunable) continue;
    torch::Tensor joined, chained;
    for (const auto& member : group.members) {
      if (member.dim != 0 || !is_weight(member.tensor)) continue;
      const std::string layer = layer_of(member.tensor);
      const torch::Tensor g = model.module.attr(layer + "_g").toTensor();
      const torch::Tensor rv = model.module.attr(layer + "_rv").toTensor();
      // The spread of the batch norm's output: |gamma| unless the input hardly varies.
      const torch::Tensor spread = g.abs() * (rv / (rv + eps)).sqrt();
      const torch::Tensor w = model.module.attr(member.tensor).toTensor();
      const bool depthwise = w.size(1) == 1 && w.size(0) > 1;
      if (depthwise) {
        chained = chained.defined() ? torch::minimum(chained, spread) : spread;
      } else {
        joined = joined.defined() ? torch::maximum(joined, spread) : spread;
      }
    }
    torch::Tensor score = joined.defined() ? joined : chained;
    if (joined.defined() && chained.defined()) score = torch::minimum(joined, chained);
    saliency[group.name] = score.clone();
  }
  return saliency;
}

int rounded_width(double width, int full, int multiple, bool up) {
  multiple = std::max(multiple, 1);
  const double units = width / multiple;
  const int w = static_cast<int>(up ? std::ceil(units - 1e-9) : std::lround(units)) * multiple;
  return std::clamp(w, std::min(multiple, full), full);
}

std::vector<std::int64_t> top_channels(const torch::Tensor& score, int width) {
  const auto k = std::min<std::int64_t>(std::max(width, 1), score.size(0));
  const torch::Tensor index = std::get<0>(std::get<1>(score.topk(k)).sort());
  return std::vector<std::int64_t>(index.data_ptr<std::int64_t>(), index.data_ptr<std::int64_t>() + k);
}

std::map<std::string, std::vector<std::int64_t>> top_channels(const std::map<std::string, torch::Tensor>& score,
                                                              const std::map<std::string, int>& widths) {
  std::map<std::string, std::vector<std::int64_t>> keep;
  for (const auto& [group, width] : widths) keep[group] = top_channels(score.at(group), width);
  return keep;
}

}  // namespace edgefleet
