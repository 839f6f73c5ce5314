// The executors: MorphNet-style batch-norm scale sparsity with a cost-weighted penalty, a
// ChamNet-style evolutionary width search with an accuracy proxy, one-shot L1-norm filter
// pruning (the baseline), and widths by measured sensitivity.
#include <algorithm>
#include <cmath>
#include <random>

#include "port/adaptation_executor.h"

#include "port/channel_sensitivity.h"
#include "port/kernel_latency.h"

namespace edgefleet {
namespace {

// The cost a goal constrains, per constraint, as the executors weigh it.
std::vector<double> cost_vector(const Measurement& m) {
  return {static_cast<double>(m.cost.macs), static_cast<double>(m.cost.params), m.cost.memory_mb(), m.latency_ms.value_or(0.0)};
}

std::map<std::string, int> widths_of(const std::map<std::string, std::vector<std::int64_t>>& keep) {
  std::map<std::string, int> widths;
  for (const auto& [name, channels] : keep) widths[name] = static_cast<int>(channels.size());
  return widths;
}

// A channel's batch-norm scale: the largest |gamma| among the group's batch norms (a
// residual join has several), so a channel lives while any of them uses it.
torch::Tensor channel_scores(const std::vector<torch::Tensor>& gammas) {
  torch::Tensor score = gammas.front().abs();
  for (std::size_t i = 1; i < gammas.size(); ++i) score = torch::maximum(score, gammas[i].abs());
  return score;
}

// MorphNet: training with a sparsifying penalty on batch-norm scales (applied as a proximal
// shrink, which reaches exact zeros), each group's penalty weighted by what one of its
// channels costs on every unmet constraint, the weights re-set every k steps by the remaining
// distance to the goal (the paper's structure-loss scheduling).
class MorphNetExecutor : public AdaptationExecutor {
 public:
  MorphNetExecutor(const PortConfig& config, const TrainingData& train) : config_(config), train_(train), rng_(config.seed) {}

  void init(const PrunableModel& start, const PortGoal& goal, const std::string& /*parent*/) override {
    model_ = clone_model(start);
    model_.module.train();
    goal_ = goal;
    std::vector<torch::Tensor> parameters;
    for (const auto& p : model_.module.parameters()) parameters.push_back(p.set_requires_grad(true));
    optimizer_ = std::make_unique<torch::optim::SGD>(parameters, torch::optim::SGDOptions(config_.morphnet.learning_rate).momentum(0.9));
    gammas_ = batch_norm_scales(model_);
    steps_ = 0;
    threshold_ = config_.morphnet.threshold;
    reschedule();
  }

  Measurement measure_current(LatencyModel latency) override { return measure(model_, widths_of(alive()), goal_, latency); }

  void adjust() override {
    const auto n = train_.images.size(0);
    std::uniform_int_distribution<std::int64_t> pick(0, n - 1);
    std::vector<std::int64_t> rows(static_cast<std::size_t>(config_.morphnet.batch));
    for (auto& r : rows) r = pick(rng_);
    const auto index = torch::tensor(rows, torch::kInt64);
    optimizer_->zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model_.module.forward({model_input(train_.images.index_select(0, index))}).toTensor(),
                                                     train_.labels.index_select(0, index));
    loss.backward();
    optimizer_->step();
    {
      torch::NoGradGuard no_grad;
      for (auto& [group, tensors] : gammas_) {
        const double shrink = penalty_[group];
        if (shrink <= 0) continue;
        // The group's narrowest allowed width survives whatever the goal: its strongest
        // channels are not shrunk, so even the smallest model keeps working features.
        const auto full = tensors.front().size(0);
        const torch::Tensor score = channel_scores(tensors);
        torch::Tensor amount = torch::full({full}, shrink);
        amount.index_fill_(0, std::get<1>(score.topk(std::min<std::int64_t>(config_.channel_multiple, full))), 0.0);
        for (auto& g : tensors) g.copy_(g.sign() * (g.abs() - amount).clamp_min(0.0));
      }
    }
    // A goal the penalty has not reached in a quarter of the step budget is finished by
    // raising the threshold: the weakest scales die first (network slimming), down to the
    // protected narrowest widths, which every goal that passed validation fits.
    if (++steps_ > config_.morphnet.max_steps / 4) threshold_ *= 1.01;
    if (steps_ % config_.morphnet.reschedule_every == 0) reschedule();
  }

  PrunableModel result() override { return prune_channels(model_, alive()).value(); }

 private:
  std::map<std::string, std::vector<std::int64_t>> alive() {
    torch::NoGradGuard no_grad;
    std::map<std::string, std::vector<std::int64_t>> keep;
    for (const auto& [group, tensors] : gammas_) {
      const torch::Tensor score = channel_scores(tensors);
      std::vector<std::int64_t> channels;
      const auto* s = score.data_ptr<float>();
      for (std::int64_t c = 0; c < score.size(0); ++c) {
        if (s[c] >= threshold_) channels.push_back(c);
      }
      const int full = static_cast<int>(score.size(0));
      const int width = rounded_width(static_cast<double>(channels.size()), full, config_.channel_multiple, /*up=*/true);
      keep[group] = static_cast<std::size_t>(width) == channels.size() ? channels : top_channels(score, width);
    }
    return keep;
  }

  // Per group: the shrink per step, strength * sum over unmet constraints of the constraint's
  // weight (its remaining distance, floored so the last stretch still moves) times what one
  // channel of the group costs relative to the costliest group's channel.
  void reschedule() {
    const auto keep = alive();
    const auto widths = widths_of(keep);
    const Measurement now = measure(model_, widths, goal_, config_.latency_model);
    const std::vector<double> distance = distances(now, goal_);
    const std::vector<double> total = cost_vector(now);
    std::map<std::string, std::vector<double>> marginal;
    std::vector<double> largest(total.size(), 0.0);
    for (const auto& [group, width] : widths) {
      if (width <= 1) continue;
      auto narrower = widths;
      narrower[group] = width - 1;
      const auto less = cost_vector(measure(model_, narrower, goal_, config_.latency_model));
      auto& m = marginal[group];
      for (std::size_t k = 0; k < total.size(); ++k) {
        m.push_back(std::max(0.0, total[k] - less[k]));
        largest[k] = std::max(largest[k], m.back());
      }
    }
    penalty_.clear();
    for (const auto& [group, m] : marginal) {
      double weight = 0.0;
      for (std::size_t k = 0; k < m.size(); ++k) {
        if (distance[k] > 0 && largest[k] > 0) weight += std::clamp(distance[k], 0.3, 1.0) * m[k] / largest[k];
      }
      penalty_[group] = config_.morphnet.strength * weight;
    }
  }

  const PortConfig& config_;
  const TrainingData& train_;
  std::mt19937_64 rng_;
  PrunableModel model_;
  PortGoal goal_;
  std::unique_ptr<torch::optim::SGD> optimizer_;
  std::map<std::string, std::vector<torch::Tensor>> gammas_;
  std::map<std::string, double> penalty_;
  double threshold_ = 0.0;
  int steps_ = 0;
};

// One-shot L1-norm filter pruning: every group narrowed alike, keeping the filters of largest
// L1 norm; no training. Each adjustment removes one block of `multiple` channels from the
// group that keeps the largest fraction of its width (ties: the wider group), so the cost
// falls a block at a time: narrowing all groups by one ratio crosses many rounding boundaries
// at once, and a child adapted from an already narrow parent overshot its budget (a goal at
// 2.9 M MACs landed at 0.9 M).
class L1Executor : public AdaptationExecutor {
 public:
  explicit L1Executor(int multiple) : multiple_(std::max(multiple, 1)) {}
  void init(const PrunableModel& start, const PortGoal& goal, const std::string& /*parent*/) override {
    start_ = start;
    goal_ = goal;
    norms_ = filter_l1_norms(start);
    widths_.clear();
    for (const auto& [group, norm] : norms_) widths_[group] = static_cast<int>(norm.size(0));
    exhausted_ = false;
  }
  Measurement measure_current(LatencyModel latency) override { return measure(start_, widths_, goal_, latency); }
  void adjust() override {
    const std::string* widest = nullptr;
    double kept = 0.0;
    int widest_full = 0;
    for (const auto& [group, width] : widths_) {
      const int full = static_cast<int>(norms_.at(group).size(0));
      if (width <= std::min(multiple_, full)) continue;
      const double fraction = static_cast<double>(width) / full;
      if (!widest || fraction > kept || (fraction == kept && full > widest_full)) {
        widest = &group;
        kept = fraction;
        widest_full = full;
      }
    }
    if (!widest) {
      exhausted_ = true;
      return;
    }
    int& width = widths_.at(*widest);
    width = std::max((width - 1) / multiple_ * multiple_, std::min(multiple_, widest_full));
  }
  bool finished(bool goal_met) const override { return goal_met || exhausted_; }
  PrunableModel result() override { return prune_channels(start_, top_channels(norms_, widths_)).value(); }

 private:
  int multiple_;
  PrunableModel start_;
  PortGoal goal_;
  std::map<std::string, torch::Tensor> norms_;
  std::map<std::string, int> widths_;
  bool exhausted_ = false;
};

// Widths by measured sensitivity (a model read through its graph, probed with training
// photos): init measures each group's answer change when cut alone; each adjustment narrows
// the group where the next step costs the least change per MAC saved. Collectively, a child
// continues its parent's curves (measured on the model the parent was cut from) from the
// parent's widths: the same greedy path, so it reaches the widths an independent search from
// that model would, without measuring again.
class SensitivityExecutor : public AdaptationExecutor {
 public:
  explicit SensitivityExecutor(int multiple) : multiple_(multiple) {}
  void init(const PrunableModel& start, const PortGoal& goal, const std::string& parent) override {
    if (!start.graph || !start.graph->probe().defined()) {
      throw Error(invalid_argument("algorithm sensitivity measures a model read through its graph on training photos: "
                                   "a zoo model or a model without photos has neither (use l1, evolution or morphnet)"));
    }
    start_ = start;
    goal_ = goal;
    saliency_ = channel_saliency(start);
    widths_ = start.graph->widths();
    const auto kept = kept_.find(parent);
    if (!parent.empty() && kept != kept_.end() && on_curves(kept->second, widths_)) {
      sensitivity_ = kept->second;
    } else {
      sensitivity_ = measure_sensitivity(*start.graph, saliency_, start.graph->probe(), multiple_);
    }
    exhausted_ = false;
  }
  Measurement measure_current(LatencyModel latency) override { return measure(start_, widths_, goal_, latency); }
  void adjust() override { exhausted_ = !narrow_least_sensitive(*start_.graph, sensitivity_, widths_); }
  bool finished(bool goal_met) const override { return goal_met || exhausted_; }
  PrunableModel result() override {
    kept_[goal_.name] = sensitivity_;
    return prune_channels(start_, top_channels(saliency_, widths_)).value();
  }
  nlohmann::json search_state() const override {
    const auto kept = kept_.find(goal_.name);
    return kept == kept_.end() ? nlohmann::json() : sensitivity_to_json(kept->second);
  }
  void restore_search_state(const std::string& goal, const nlohmann::json& state) override {
    if (auto curves = sensitivity_from_json(state)) kept_[goal] = std::move(*curves);
  }

 private:
  // Whether every group's width is a point of its curve (a model the curves' search produced).
  static bool on_curves(const ChannelSensitivity& curves, const std::map<std::string, int>& widths) {
    for (const auto& [name, width] : widths) {
      const auto curve = curves.find(name);
      if (curve == curves.end() || std::find(curve->second.widths.begin(), curve->second.widths.end(), width) == curve->second.widths.end()) {
        return false;
      }
    }
    return true;
  }

  int multiple_;
  PrunableModel start_;
  PortGoal goal_;
  std::map<std::string, torch::Tensor> saliency_;
  ChannelSensitivity sensitivity_;
  std::map<std::string, int> widths_;
  bool exhausted_ = false;
  std::map<std::string, ChannelSensitivity> kept_;  // by goal: the curves its widths were chosen on
};

// ChamNet-style evolutionary search over per-group widths: candidates that meet the goal
// are ranked by an accuracy proxy (the model pruned to its most salient channels, batch norms recalibrated on
// training images, evaluated on held-out proxy images); the best half is kept and mutated.
class EvolutionExecutor : public AdaptationExecutor {
 public:
  EvolutionExecutor(const PortConfig& config, const TrainingData& train, const TrainingData& proxy)
      : config_(config), train_(train), proxy_(proxy), rng_(config.seed) {}

  void init(const PrunableModel& start, const PortGoal& goal, const std::string& /*parent*/) override {
    start_ = start;
    goal_ = goal;
    norms_ = channel_saliency(start);
    generation_ = 0;
    population_.clear();
    // Seed: the uniform ratio that just meets the goal (every group narrowed alike), mutated.
    double ratio = 1.0;
    while (ratio > 0.02 && !meets(measure(start_, uniform(ratio), goal_, config_.latency_model), goal_)) ratio *= 0.97;
    population_.push_back(score(uniform(ratio)));
    while (static_cast<int>(population_.size()) < config_.evolution.population) population_.push_back(score(mutate(population_[0].widths)));
    sort_population();
  }

  Measurement measure_current(LatencyModel latency) override { return measure(start_, population_.front().widths, goal_, latency); }

  void adjust() override {
    const std::size_t keep = std::max<std::size_t>(1, population_.size() / 2);
    population_.resize(keep);
    std::uniform_int_distribution<std::size_t> parent(0, keep - 1);
    while (static_cast<int>(population_.size()) < config_.evolution.population) {
      population_.push_back(score(mutate(population_[parent(rng_)].widths)));
    }
    sort_population();
    ++generation_;
  }

  bool finished(bool goal_met) const override { return goal_met && generation_ >= config_.evolution.generations; }

  PrunableModel result() override { return pruned(population_.front().widths); }

 private:
  struct Candidate {
    std::map<std::string, int> widths;
    bool feasible = false;
    double fitness = 0.0;  // proxy accuracy when feasible, else minus the distance
  };

  std::map<std::string, int> uniform(double ratio) const {
    std::map<std::string, int> w;
    for (const auto& [group, norm] : norms_) {
      const int full = static_cast<int>(norm.size(0));
      w[group] = rounded_width(full * ratio, full, config_.channel_multiple);
    }
    return w;
  }
  std::map<std::string, int> mutate(std::map<std::string, int> widths) {
    std::normal_distribution<double> step(0.0, config_.evolution.mutation);
    for (auto& [group, width] : widths) {
      const int most = static_cast<int>(norms_.at(group).size(0));
      width = rounded_width(width * (1.0 + step(rng_)), most, config_.channel_multiple);
    }
    return widths;
  }
  PrunableModel pruned(const std::map<std::string, int>& widths) const {
    return prune_channels(start_, top_channels(norms_, widths)).value();
  }
  Candidate score(std::map<std::string, int> widths) {
    Candidate c;
    const Measurement m = measure(start_, widths, goal_, config_.latency_model);
    c.feasible = meets(m, goal_);
    if (!c.feasible) {
      double sum = 0.0;
      for (double d : distances(m, goal_)) sum += d;
      c.fitness = -sum;
    } else {
      PrunableModel model = pruned(widths);
      model.module.train();
      {
        torch::NoGradGuard no_grad;
        for (std::int64_t start = 0; start < std::min<std::int64_t>(512, train_.images.size(0)); start += 128) {
          model.module.forward({model_input(train_.images.slice(0, start, std::min<std::int64_t>(start + 128, train_.images.size(0))))});
        }
      }
      c.fitness = top1_accuracy(model.module, proxy_);
    }
    c.widths = std::move(widths);
    return c;
  }
  void sort_population() {
    std::stable_sort(population_.begin(), population_.end(), [](const Candidate& a, const Candidate& b) {
      if (a.feasible != b.feasible) return a.feasible;
      return a.fitness > b.fitness;
    });
  }

  const PortConfig& config_;
  const TrainingData& train_;
  const TrainingData& proxy_;
  std::mt19937_64 rng_;
  PrunableModel start_;
  PortGoal goal_;
  std::map<std::string, torch::Tensor> norms_;
  std::vector<Candidate> population_;
  int generation_ = 0;
};

}  // namespace

Measurement measure(const PrunableModel& model, const std::map<std::string, int>& widths, const PortGoal& goal, LatencyModel latency) {
  Measurement m;
  m.cost = cost_at(model, widths);
  if (!goal.max_latency_ms) return m;
  if (goal.latency_predictor) {
    m.latency_ms = predicted_kernels_ms(*goal.latency_predictor, kernels_at(model, widths), goal.latency_graph).value();
  } else {
    m.latency_ms = estimated_latency_ms(m.cost, goal.hardware, latency).value();
  }
  return m;
}

std::vector<double> distances(const Measurement& m, const PortGoal& goal) {
  auto over = [](double cost, std::optional<double> budget) { return budget ? std::max(0.0, cost / *budget - 1.0) : 0.0; };
  return {over(static_cast<double>(m.cost.macs), goal.max_macs ? std::optional<double>(static_cast<double>(*goal.max_macs)) : std::nullopt),
          over(static_cast<double>(m.cost.params), goal.max_params ? std::optional<double>(static_cast<double>(*goal.max_params)) : std::nullopt),
          over(m.cost.memory_mb(), goal.max_memory_mb), over(m.latency_ms.value_or(0.0), goal.max_latency_ms)};
}

bool meets(const Measurement& m, const PortGoal& goal) {
  for (double d : distances(m, goal)) {
    if (d > 0) return false;
  }
  return true;
}

std::unique_ptr<AdaptationExecutor> make_executor(const PortConfig& config, const TrainingData& train, const TrainingData& proxy) {
  if (config.algorithm == PortAlgorithm::kMorphNet) return std::make_unique<MorphNetExecutor>(config, train);
  if (config.algorithm == PortAlgorithm::kEvolution) return std::make_unique<EvolutionExecutor>(config, train, proxy);
  if (config.algorithm == PortAlgorithm::kSensitivity) return std::make_unique<SensitivityExecutor>(config.channel_multiple);
  return std::make_unique<L1Executor>(config.channel_multiple);
}

}  // namespace edgefleet
