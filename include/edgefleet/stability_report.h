// The stability run's HTML report: one self-contained page (no external resources) that
// embeds summary.json and draws it with inline script — headline figures, accuracy per
// environment, instability per source, the pairwise disagreement heatmap, confidence
// histograms of stable vs unstable inputs, and a gallery of the most unstable inputs with
// what each environment predicted, linked to the explanations `stability explain` added to the
// summary (which stage changes flip it, where inside the model the two inputs part). Every
// figure on the page is read from the embedded summary, so the page and summary.json cannot
// disagree.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edgefleet/image.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct StabilityReportExtras {
  std::vector<std::string> class_names;           // by class index; indices are shown without
  std::map<std::string, std::string> thumbnails;  // input name -> image data URI, for the gallery
};

std::string stability_report_html(const nlohmann::json& summary, const StabilityReportExtras& extras = {});

// A PNG data URI of `image` scaled so its longer side is at most `size` pixels.
Expected<std::string> thumbnail_data_uri(const Image& image, int size = 112);

}  // namespace edgefleet
