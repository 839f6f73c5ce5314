// Latency measurement of a Classifier: warm-up runs, then timed runs on a zero batch.
// Uses the classifier exclusively while it runs (not thread-safe for the same classifier).
#pragma once

#include "edgefleet/classifier.h"

namespace edgefleet {

struct LatencyStats {
  int batch = 1;
  int runs = 0;
  double median_ms = 0.0;  // per batch
  double mean_ms = 0.0;
  double std_ms = 0.0;
  double min_ms = 0.0;
  double max_ms = 0.0;
};

// Runs `warmup` untimed then `runs` timed inferences of a batch of `batch` inputs.
Expected<LatencyStats> measure_latency(Classifier& classifier, int batch, int warmup = 3, int runs = 10);

}  // namespace edgefleet
