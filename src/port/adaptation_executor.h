// Internal: adaptation executors behind the Mistify paper's Init/Measure/Adjust interface
// (§4.2), and the measurements of a model against a goal that steer them.
#pragma once

#include <torch/script.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "edgefleet/port.h"
#include "port/channel_pruning.h"
#include "zoo/training.h"

namespace edgefleet {

struct Measurement {
  ArchCost cost;
  std::optional<double> latency_ms;  // on the goal's hardware, when it has a latency budget
};

// `model` with the named groups at `widths` (others whole), against `goal`: its cost, and when
// the goal has a latency budget its latency — predicted from its kernels by the goal's device
// latency model when there is one, else estimated from the cost by the analytic `latency`.
Measurement measure(const PrunableModel& model, const std::map<std::string, int>& widths, const PortGoal& goal, LatencyModel latency);
// Per constraint the goal sets (MACs, params, memory, latency, in that order; 0 when absent):
// how far above its budget the model is, relative to the budget (0 = met).
std::vector<double> distances(const Measurement& m, const PortGoal& goal);
bool meets(const Measurement& m, const PortGoal& goal);

class AdaptationExecutor {
 public:
  virtual ~AdaptationExecutor() = default;
  // Init: the starting model (the base or the parent goal's adapted model), the goal, and the
  // goal `start` was adapted for ("" for the base): collectively, an executor may continue the
  // search it made for that goal instead of starting over.
  virtual void init(const PrunableModel& start, const PortGoal& goal, const std::string& parent) = 0;
  // Measure: the model the executor would produce now, against the goal of init().
  virtual Measurement measure_current(LatencyModel latency) = 0;
  // Adjust: one iteration (a training step, a width step, a generation).
  virtual void adjust() = 0;
  // Whether to stop, given whether the current spec meets the goal.
  virtual bool finished(bool goal_met) const { return goal_met; }
  // The physically pruned model.
  virtual PrunableModel result() = 0;
  // What a child of the goal of the last result() may continue from, saved with the goal so a
  // resumed run continues as an uninterrupted one would; null when the executor keeps nothing.
  virtual nlohmann::json search_state() const { return nullptr; }
  // A saved search_state() of goal `goal`, given back on resume.
  virtual void restore_search_state(const std::string& goal, const nlohmann::json& state) {
    (void)goal;
    (void)state;
  }
};

std::unique_ptr<AdaptationExecutor> make_executor(const PortConfig& config, const TrainingData& train, const TrainingData& proxy);

}  // namespace edgefleet
