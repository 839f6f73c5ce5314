#include "port/channel_sensitivity.h"

#include <algorithm>

#include "port/channel_pruning.h"

namespace edgefleet {
namespace {

const double kLevels[] = {0.875, 0.75, 0.625, 0.5, 0.375, 0.25};

torch::Tensor log_answers(torch::jit::Module module, const torch::Tensor& probe) {
  torch::NoGradGuard no_grad;
  module.eval();
  return torch::log_softmax(module.forward({probe}).toTensor().to(torch::kFloat), 1);
}

}  // namespace

ChannelSensitivity measure_sensitivity(const ChannelGraph& graph, const std::map<std::string, torch::Tensor>& saliency,
                                       const torch::Tensor& probe, int multiple) {
  const auto base = log_answers(graph.module(), probe);
  const auto base_p = base.exp();
  ChannelSensitivity out;
  for (const auto& [name, full] : graph.widths()) {
    GroupSensitivity& s = out[name];
    s.widths.push_back(full);
    s.loss.push_back(0.0);
    if (full < 2 * multiple) continue;
    for (double level : kLevels) {
      const int width = rounded_width(level * full, full, multiple);
      if (width >= s.widths.back() || width < multiple) continue;
      auto pruned = graph.prune({{name, top_channels(saliency.at(name), width)}});
      if (!pruned) throw Error(pruned.status());
      const auto log_p = log_answers(*pruned, probe);
      const double kl = (base_p * (base - log_p)).sum(1).mean().item<double>();
      s.widths.push_back(width);
      s.loss.push_back(std::max(kl, s.loss.back()));
    }
  }
  return out;
}

nlohmann::json sensitivity_to_json(const ChannelSensitivity& sensitivity) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, s] : sensitivity) j[name] = {{"widths", s.widths}, {"loss", s.loss}};
  return j;
}

std::optional<ChannelSensitivity> sensitivity_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  ChannelSensitivity out;
  try {
    for (const auto& [name, curve] : j.items()) {
      GroupSensitivity& s = out[name];
      s.widths = curve.at("widths").get<std::vector<int>>();
      s.loss = curve.at("loss").get<std::vector<double>>();
      if (s.widths.empty() || s.widths.size() != s.loss.size()) return std::nullopt;
    }
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  return out;
}

bool narrow_least_sensitive(const ChannelGraph& graph, const ChannelSensitivity& sensitivity, std::map<std::string, int>& widths) {
  const auto macs = static_cast<double>(graph.cost(widths).macs);
  std::string best;
  int best_width = 0;
  double best_ratio = 0;
  for (const auto& [name, s] : sensitivity) {
    const auto at = std::find(s.widths.begin(), s.widths.end(), widths.at(name));
    if (at == s.widths.end() || at + 1 == s.widths.end()) continue;
    const auto next = static_cast<std::size_t>(at - s.widths.begin()) + 1;
    auto trial = widths;
    trial[name] = s.widths[next];
    const double saved = macs - static_cast<double>(graph.cost(trial).macs);
    if (saved <= 0) continue;
    const double ratio = (s.loss[next] - s.loss[next - 1]) / saved;
    if (best.empty() || ratio < best_ratio) {
      best = name;
      best_width = s.widths[next];
      best_ratio = ratio;
    }
  }
  if (best.empty()) return false;
  widths[best] = best_width;
  return true;
}

}  // namespace edgefleet
