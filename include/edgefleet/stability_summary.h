// summary.json of a stability run: the instability metrics of the predictions in its store.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "edgefleet/instability.h"
#include "edgefleet/results_store.h"

namespace edgefleet {

// {"images", "skipped", "failures", "environments": [{name, spec, accuracy, accuracy_top3}],
//  "reference", "instability", "instability_top3", "disagreement", "accuracy_drop": {mean,
//  max}, "pairwise_disagreement", "per_class", "confidence": {stable, unstable, histograms},
//  "most_unstable": [{input, label, predictions}], "per_source" (when environments are named
//  AXIS/VARIANT): [{source, baseline, images, environments: [{name, accuracy}], instability,
//  instability_top3, disagreement, accuracy_drop}]}. top_k (default 3) names the _top3 keys.
Expected<nlohmann::json> summarize_stability(const ResultsStore& store, const InstabilityOptions& options = {});

}  // namespace edgefleet
