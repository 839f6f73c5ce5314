// Multi-branch models (papers/mistify.md §6): a shared base — the first layer(s) of the
// source model, frozen — and k branches, the remaining layers pruned to budgets from 1/3x to
// 3x of the middle one and fine-tuned on the frozen base. Switching the active branch is
// one atomic store: nothing is loaded or allocated, and inference goes on meanwhile.
// The file is one TorchScript module (methods base, branch_<i>, forward; attribute `active`),
// loadable anywhere; MultiBranchModel runs it with the switch outside the graph.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edgefleet/port.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct MultiBranchOptions {
  std::string source_model = "cnn_plain";  // a zoo model (name or card) with an ArchSpec
  // Layers in the shared base. The first layers run at full resolution and cost most of a
  // small network's MACs, so a deep base leaves the branches little to cut: 1 by default.
  int base_layers = 1;
  // MACs budgets as fractions of the source: by default 1/3x, 1x and 3x of the middle branch.
  std::vector<double> budgets{1.0 / 9, 1.0 / 3, 1.0};
  int channel_multiple = 8;
  FinetuneSettings finetune{300, 64, 0.01, true, 0.5, 2.0, true};  // per branch, from the source
  std::size_t train_images = 10000;  // Fashion-MNIST training images for fine-tuning
  std::size_t eval_images = 2000;    // test images for each branch's accuracy
  int threads = 0;
  std::uint64_t seed = 1;
};

struct BranchInfo {
  int index = 0;
  double budget = 0.0;        // fraction of the source's MACs asked for
  bool budget_met = true;     // false: even the narrowest tail costs more (the base is fixed)
  std::int64_t macs = 0;      // base + this branch, one image
  std::int64_t params = 0;    // base + this branch
  double accuracy = 0.0;      // top-1 on the evaluation images
  std::string standalone;     // the same network as a plain model file (for reload comparisons)
};

struct MultiBranchBuild {
  std::string model_file;
  std::int64_t base_params = 0;
  std::int64_t total_params = 0;  // base + every branch: what the multi-branch model holds
  std::vector<BranchInfo> branches;
};

// Builds the model into `out_file` (and one standalone .pt per branch beside it).
Expected<MultiBranchBuild> build_multi_branch(const MultiBranchOptions& options, const std::string& out_file);

class MultiBranchModel {
 public:
  // Loads a file written by build_multi_branch; the active branch is the one it was saved with.
  static Expected<std::unique_ptr<MultiBranchModel>> load(const std::string& path);
  ~MultiBranchModel();

  int branch_count() const;
  int active() const { return active_.load(std::memory_order_acquire); }
  const std::vector<BranchInfo>& branches() const;
  int channels() const;
  int input_size() const;
  int classes() const;

  // The next inferences run `branch`. invalid_argument when out of range.
  Status switch_to(int branch);

  // n images of channels x size x size floats in [0, 1] -> n * classes logits. Thread-safe:
  // each call runs the branch active when it starts.
  Expected<std::vector<float>> infer(const float* batch, int n);

 private:
  struct Impl;
  explicit MultiBranchModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::atomic<int> active_{0};
};

struct SwitchLoadOptions {
  double seconds = 10.0;
  int clients = 2;              // threads inferring batch-1 images back to back
  double switch_every_ms = 50;  // the switcher moves to the next branch this often
  int reload_repeats = 5;
};

struct SwitchLoadResult {
  std::int64_t requests = 0;
  std::int64_t failed = 0;          // errors or malformed outputs
  std::int64_t switches = 0;
  double switch_median_us = 0.0;    // the switch call itself
  double switch_max_us = 0.0;
  double first_after_switch_ms = 0.0;  // median latency of the first inference after a switch
  double steady_ms = 0.0;              // median latency of the others
  std::vector<double> branch_latency_ms;  // median per branch during the run
  std::vector<double> reload_ms;          // per branch: load its standalone file + first inference (median)
  std::int64_t total_params = 0;          // every branch and the base
  std::int64_t middle_params = 0;         // the middle branch alone (the "original" model)
};

// A load run with switching (paper Table 4's comparison): clients infer while a switcher
// cycles through the branches; then each branch's standalone file is loaded as a runtime
// without branches would have to.
Expected<SwitchLoadResult> run_switch_load(const std::string& multi_branch_file, const std::vector<float>& images, const SwitchLoadOptions& options);

}  // namespace edgefleet
