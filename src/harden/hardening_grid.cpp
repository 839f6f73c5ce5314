// Hardening settings: names, the canonical one-line form, and the grid of candidates.
#include <sstream>

#include "edgefleet/hardening.h"

namespace edgefleet {
namespace {

const std::vector<std::pair<NoiseKind, std::string>> kNoiseNames{
    {NoiseKind::kNone, "none"},         {NoiseKind::kGaussian, "gaussian"}, {NoiseKind::kDistortion, "distortion"},
    {NoiseKind::kPaired, "paired"},     {NoiseKind::kSubsample, "subsample"}, {NoiseKind::kMixed, "mixed"}};
const std::vector<std::pair<StabilityLoss, std::string>> kLossNames{
    {StabilityLoss::kNone, "none"}, {StabilityLoss::kKl, "kl"}, {StabilityLoss::kEmbedding, "embedding"}};

template <typename Enum>
std::string allowed(const std::vector<std::pair<Enum, std::string>>& names) {
  std::string out;
  for (const auto& [value, name] : names) out += (out.empty() ? "" : "|") + name;
  return out;
}

std::string number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

}  // namespace

std::string noise_kind_name(NoiseKind kind) {
  for (const auto& [value, name] : kNoiseNames) {
    if (value == kind) return name;
  }
  return "?";
}

Expected<NoiseKind> parse_noise_kind(const std::string& name) {
  for (const auto& [value, known] : kNoiseNames) {
    if (known == name) return value;
  }
  return invalid_argument("unknown noise '" + name + "' (expected " + allowed(kNoiseNames) + ")");
}

std::string stability_loss_name(StabilityLoss loss) {
  for (const auto& [value, name] : kLossNames) {
    if (value == loss) return name;
  }
  return "?";
}

Expected<StabilityLoss> parse_stability_loss(const std::string& name) {
  for (const auto& [value, known] : kLossNames) {
    if (known == name && value != StabilityLoss::kNone) return value;
  }
  return invalid_argument("unknown stability loss '" + name + "' (expected kl|embedding)");
}

std::string hyper_parameters(const HardenSetting& s) {
  if (s.noise == NoiseKind::kNone || s.noise == NoiseKind::kMixed) return "N/A";
  std::string out = "alpha=" + number(s.alpha);
  if (s.noise == NoiseKind::kGaussian) out += " sigma2=" + number(s.sigma2);
  if (s.noise == NoiseKind::kDistortion) out += " strength=" + number(s.strength);
  if (s.noise == NoiseKind::kSubsample) out += " per_class=" + std::to_string(s.per_class);
  return out;
}

std::string harden_setting_to_string(const HardenSetting& s) {
  if (s.noise == NoiseKind::kNone || s.noise == NoiseKind::kMixed) return noise_kind_name(s.noise);
  return noise_kind_name(s.noise) + " " + stability_loss_name(s.loss) + " " + hyper_parameters(s);
}

Expected<std::vector<HardenSetting>> grid_settings(const HardenGrid& grid) {
  auto positive = [](const std::vector<double>& values, const std::string& what) -> Status {
    if (values.empty()) return invalid_argument("the grid has no " + what);
    for (double v : values) {
      if (!(v > 0)) return invalid_argument(what + " must be > 0, got " + number(v));
    }
    return Status::ok();
  };
  std::vector<HardenSetting> out{HardenSetting{}};
  for (NoiseKind noise : grid.noises) {
    if (noise == NoiseKind::kNone) continue;  // always first
    if (noise == NoiseKind::kMixed) {
      out.push_back({NoiseKind::kMixed});
      continue;
    }
    if (grid.losses.empty()) return invalid_argument("noise '" + noise_kind_name(noise) + "' needs a stability loss");
    std::vector<HardenSetting> variants;
    HardenSetting base{noise};
    if (noise == NoiseKind::kGaussian) {
      if (Status s = positive(grid.sigma2s, "sigma2"); !s.is_ok()) return s;
      for (double v : grid.sigma2s) variants.push_back(base), variants.back().sigma2 = v;
    } else if (noise == NoiseKind::kDistortion) {
      if (Status s = positive(grid.strengths, "distortion strength"); !s.is_ok()) return s;
      for (double v : grid.strengths) {
        if (v > 1) return invalid_argument("distortion strength must be in (0, 1], got " + number(v));
        variants.push_back(base), variants.back().strength = v;
      }
    } else if (noise == NoiseKind::kSubsample) {
      if (grid.per_class.empty()) return invalid_argument("the grid has no per_class");
      for (int k : grid.per_class) {
        if (k < 1) return invalid_argument("per_class must be >= 1, got " + std::to_string(k));
        variants.push_back(base), variants.back().per_class = k;
      }
    } else {
      variants.push_back(base);
    }
    for (StabilityLoss loss : grid.losses) {
      if (loss == StabilityLoss::kNone) return invalid_argument("noise '" + noise_kind_name(noise) + "' needs kl or embedding");
      const auto& alphas = loss == StabilityLoss::kKl ? grid.kl_alphas : grid.embedding_alphas;
      if (Status s = positive(alphas, stability_loss_name(loss) + " alpha"); !s.is_ok()) return s;
      for (double alpha : alphas) {
        for (HardenSetting v : variants) {
          v.loss = loss;
          v.alpha = alpha;
          out.push_back(v);
        }
      }
    }
  }
  return out;
}

}  // namespace edgefleet
