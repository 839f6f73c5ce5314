// A model repository as the server reads it, in a Triton-like folder layout: one folder per
// task, one folder per variant inside it, holding the variant's card and model file.
//
//   REPO/fashion-mnist/cnn_tiny/cnn_tiny.json + cnn_tiny.pt
//   REPO/fashion-mnist/mobilenetv2_w050/mobilenetv2_w050.json + ...pt
//
// Variants of one task are functionally equivalent (same classes); names are unique across
// the repository, so that a variant can be addressed without its task.
#pragma once

#include <string>
#include <vector>

#include "edgefleet/model_card.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct RepositoryEntry {
  std::string task;
  std::string variant;    // the folder name
  std::string card_path;  // the one *.json in the variant's folder
};

// Lists every variant, sorted by task then variant. Fails with not_found (no such folder),
// invalid_argument (a variant folder without exactly one card, a variant named like a task or
// like another variant).
Expected<std::vector<RepositoryEntry>> scan_repository(const std::string& dir);

// Copies a model and its card into DIR/TASK/VARIANT/ (VARIANT defaults to the card's name),
// replacing an existing variant of that name atomically (written beside, then renamed).
Expected<RepositoryEntry> add_to_repository(const std::string& dir, const std::string& task, const ModelCard& card,
                                            const std::string& variant = "");

}  // namespace edgefleet
