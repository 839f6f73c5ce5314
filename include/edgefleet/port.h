// Porting (papers/mistify.md §4): one model tailored into a suite of variants, one per
// goal (a device's hardware or explicit constraints), adapted collectively along the goal
// tree and fine-tuned. PortConfig is the one JSON file a user writes; run_port does the work
// in a resumable output folder. run_port uses the process-wide torch thread pool.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edgefleet/arch_cost.h"
#include "edgefleet/latency_predictor.h"
#include "edgefleet/finetune.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct PortGoal {
  std::string name;
  std::string device;  // a fleet profile name; its hardware prices latency and bounds memory
  Hardware hardware;   // resolved from `device` (empty when none)
  // The device's measured latency model (its profile's latency_model section), when it has
  // one: it prices max_latency_ms instead of the analytic model on `hardware`.
  std::shared_ptr<const LatencyPredictor> latency_predictor;
  // The graph latency_predictor prices: run_port sets the one the base model's Classifier
  // runs a batch of one on (kNone: the optimised graph's predictors).
  InferenceGraph latency_graph = InferenceGraph::kNone;
  std::optional<std::int64_t> max_macs;
  std::optional<std::int64_t> max_params;
  std::optional<double> max_memory_mb;   // weights + peak activations
  std::optional<double> max_latency_ms;  // predicted by latency_predictor, else estimated on `hardware`
  std::optional<double> min_accuracy;    // top-1 in [0, 1] after fine-tuning, on the evaluation images
};

struct MorphNetKnobs {
  double strength = 0.03;     // proximal shrink of batch-norm scales per step, at distance 1
  double threshold = 0.01;    // |gamma| below this: the channel is dead
  double learning_rate = 0.01;
  int batch = 64;
  int reschedule_every = 20;  // k: steps between re-weightings by remaining distance
  int max_steps = 4000;       // per goal; a goal not met by then is reported unmet
};

struct EvolutionKnobs {
  int population = 16;
  int generations = 8;
  int proxy_images = 512;  // accuracy proxy: the pruned, batch-norm-recalibrated model on these
  double mutation = 0.15;  // relative change of a group's width per mutation
};

// How each goal's model is found: MorphNet's batch-norm-scale sparsity, ChamNet-style width
// evolution, one-shot L1-norm filter pruning (the baseline), or widths by each channel group's
// sensitivity measured on the training photos (models read through their graph).
enum class PortAlgorithm { kMorphNet, kEvolution, kL1, kSensitivity };
// collective: each goal adapted from its parent in the goal tree; independent: from the base.
enum class PortMode { kCollective, kIndependent };

// Names as configs and the command line write them: morphnet, evolution, l1, sensitivity; collective,
// independent; sum, roofline; sgd, adamw (`finetune.optimizer`, and harden's --optimizer).
Expected<PortAlgorithm> parse_port_algorithm(const std::string& name);
std::string port_algorithm_name(PortAlgorithm algorithm);
std::vector<std::string> port_algorithm_names();
Expected<PortMode> parse_port_mode(const std::string& name);
std::string port_mode_name(PortMode mode);
std::vector<std::string> port_mode_names();
Expected<FinetuneOptimizer> parse_finetune_optimizer(const std::string& name);
std::vector<std::string> finetune_optimizer_names();
std::string latency_model_name(LatencyModel model);

struct PortConfig {
  // Card path or built-in model name: a zoo model, or a sequential TorchScript classifier
  // (e.g. a pretrained ImageNet model's card), imported from its graph first.
  std::string base_model;
  // "fashion-mnist" (train split to adapt and fine-tune, test split to evaluate), or an image
  // folder (relative to the working directory): even items adapt and fine-tune, odd items
  // evaluate, preprocessed as the base card says. Unreadable photos are skipped and listed.
  std::string dataset = "fashion-mnist";
  // An image folder to evaluate on instead (e.g. imagenette/val beside imagenette/train as
  // `dataset`): then every item of `dataset` adapts and fine-tunes, every item here measures.
  std::string validation;
  PortAlgorithm algorithm = PortAlgorithm::kMorphNet;
  PortMode mode = PortMode::kCollective;
  LatencyModel latency_model = LatencyModel::kSum;
  // Pruned widths are multiples of this (or the group's full width): libtorch's CPU kernels
  // run odd widths slowly, so a model pruned to half its MACs at odd widths is barely faster.
  int channel_multiple = 8;
  MorphNetKnobs morphnet;
  EvolutionKnobs evolution;
  FinetuneSettings finetune;
  // Collective mode: a goal starts from its parent's fine-tuned model (not only its adapted
  // one), so its own fine-tuning continues along the tree path (`finetune.from_parent`).
  bool finetune_from_parent = false;
  // With finetune_from_parent: a goal distils from its parent goal's fine-tuned model instead
  // of the base (a root goal still from the base; `finetune.teacher`: "parent" or "base").
  bool distill_from_parent = false;
  std::size_t train_images = 0;   // 0 = all
  std::size_t eval_images = 2000;
  int threads = 0;
  std::uint64_t seed = 1;
  std::vector<PortGoal> goals;
};

// Validates and parses. `fleet_dir` (a folder, or "builtin") resolves device names. Messages name the field.
Expected<PortConfig> port_config_from_json(const nlohmann::json& j, const std::string& origin, const std::string& fleet_dir);
Expected<PortConfig> read_port_config(const std::string& path, const std::string& fleet_dir);
// One goal object (as in "goals"), for goals that arrive one at a time (port_server.h).
Expected<PortGoal> port_goal_from_json(const nlohmann::json& j, const std::string& origin, const std::string& fleet_dir);
nlohmann::json port_config_to_json(const PortConfig& config);

struct GoalResult {
  std::string goal;
  std::string parent;         // the goal it was adapted from, "" = the base model
  bool constraints_met = false;  // measured on the produced model itself
  bool accuracy_met = true;
  ArchCost cost;
  std::optional<double> estimated_latency_ms;  // on the goal's device
  double measured_latency_ms = 0.0;            // batch 1 on this machine
  double accuracy = 0.0;                       // after fine-tuning
  int adapt_steps = 0;
  double adapt_seconds = 0.0;
  double finetune_seconds = 0.0;
  int finetune_steps = 0;  // taken: fewer than finetune.steps when a plateau stopped it
  std::string model_file;
  std::string card_file;
  // The variant as ONNX (what phones and Raspberry Pis run), checked through OpenCV DNN
  // against the TorchScript logits; "" with onnx_error saying why when it could not be written.
  std::string onnx_file;
  double onnx_max_relative_error = 0.0;
  std::string onnx_error;
};

struct PortResult {
  std::string base_model;
  std::string imported;  // how a base model without an ArchSpec was imported, "" for zoo models
  ArchCost base_cost;
  double base_accuracy = 0.0;
  double base_measured_latency_ms = 0.0;
  double tree_ms = 0.0;
  double adapt_seconds = 0.0;
  double finetune_seconds = 0.0;
  std::vector<GoalResult> goals;  // in the config's order
  std::vector<std::string> skipped;  // "item: reason" for each photo that could not be read
};

struct PortProgress {
  std::string goal;
  std::string stage;  // "adapted" | "fine-tuned" | "resumed"
  double seconds = 0.0;
};

// Runs the whole port into `out_dir`: <goal>.pt + <goal>.json per goal, port.json (the
// results), summary.md and summary.svg. Resumable: goals whose files are there from a run
// of the same config are read back, not redone. Configs that differ only by goals appended
// to the one the folder was run with (or the folder's by goals appended to them) are
// accepted: new goals are adapted from their nearest predecessors' checkpoints (every goal
// keeps one, <goal>.adapted.pt).
Expected<PortResult> run_port(const PortConfig& config, const std::string& out_dir,
                              const std::function<void(const PortProgress&)>& on_progress = {});

// The summary table (Markdown) of a result.
std::string port_summary_markdown(const PortConfig& config, const PortResult& result);

}  // namespace edgefleet
