// Instability metrics (instability paper §2.2, SysNoise's accuracy drop): how often a model's
// answer for the same input changes between environments. Pure computation over a table of
// predictions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "edgefleet/status.h"

namespace edgefleet {

// One environment's answer for one input: classes best first, with their probabilities.
// Empty when the environment failed on that input.
struct Prediction {
  std::vector<int> classes;
  std::vector<float> probabilities;
  bool empty() const { return classes.empty(); }
};

// predictions[input][environment]; labels[input] is the true class.
struct PredictionTable {
  std::vector<std::string> environments;
  std::vector<int> labels;
  std::vector<std::vector<Prediction>> predictions;
};

struct InstabilityOptions {
  int reference = 0;  // the environment accuracy drops are measured from
  int top_k = 3;      // for the top-k figures (the paper's Fig. 9 uses 3)
  int histogram_bins = 10;
};

struct InstabilityReport {
  std::size_t inputs = 0;   // inputs every environment answered (the others are left out)
  std::size_t skipped = 0;  // inputs at least one environment failed on
  // Unstable input: at least one environment right and at least one wrong (paper §2.2).
  double instability = 0.0;
  double instability_top_k = 0.0;  // "right" = the label is among an environment's top k
  // Share of inputs on which two environments' top-1 classes differ (right or wrong): an upper
  // bound of instability.
  double disagreement = 0.0;
  std::vector<double> accuracy;        // top-1, per environment
  std::vector<double> accuracy_top_k;  // per environment
  // Accuracy of the reference minus each other environment's (SysNoise): mean and max.
  double accuracy_drop_mean = 0.0;
  double accuracy_drop_max = 0.0;
  // pairwise[i][j]: share of inputs on which environments i and j give different top-1 classes.
  std::vector<std::vector<double>> pairwise_disagreement;
  // Per true class: inputs and instability.
  std::vector<int> classes;
  std::vector<std::size_t> class_inputs;
  std::vector<double> class_instability;
  // Confidence (top-1 probability averaged over environments) of stable vs unstable inputs
  // (paper Fig. 4): means and histograms over [0, 1].
  double mean_confidence_stable = 0.0;
  double mean_confidence_unstable = 0.0;
  std::vector<std::size_t> confidence_histogram_stable;
  std::vector<std::size_t> confidence_histogram_unstable;
  std::vector<std::size_t> unstable_inputs;  // indices into the table, most disagreeing first
};

// Fails with invalid_argument on a ragged table, fewer than two environments, or a bad
// reference / top_k.
Expected<InstabilityReport> measure_instability(const PredictionTable& table, const InstabilityOptions& options = {});

}  // namespace edgefleet
