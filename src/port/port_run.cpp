// run_port: loads the base zoo model and the data, builds the goal tree, adapts every goal
// (collectively along the tree or each from the base), fine-tunes, measures and writes.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/elapsed.h"
#include "core/thread_count.h"
#include "edgefleet/classifier.h"
#include "edgefleet/dataset.h"
#include "edgefleet/goal_tree.h"
#include "edgefleet/latency.h"
#include "edgefleet/model_card.h"
#include "edgefleet/onnx_export.h"
#include "edgefleet/plot.h"
#include "edgefleet/preprocess.h"
#include "edgefleet/sha256.h"
#include "port/adaptation_executor.h"
#include "zoo/module_builder.h"
#include "zoo/torchscript_import.h"

namespace edgefleet {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

TrainingData load_images(const Dataset& dataset, std::size_t limit, int channels, int size) {
  std::vector<std::size_t> items(limit > 0 ? std::min(limit, dataset.size()) : dataset.size());
  std::iota(items.begin(), items.end(), std::size_t{0});
  return raw_images(dataset, items, channels, size);
}

// Adaptation/fine-tuning images and evaluation images.
struct PortData {
  TrainingData train;
  TrainingData eval;
  std::string eval_name;
  std::vector<std::string> skipped;  // "item: reason"
};

// The listed items as the base card preprocesses them, stored as `storage`; an unreadable
// photo is skipped and listed. Training photos are kept in fp16 (an fp16 step, 1/2048 of a
// value, is a twentieth of one 8-bit pixel step after normalisation), evaluation photos in
// fp32 as the model sees them.
TrainingData preprocessed_images(const Dataset& dataset, const std::vector<std::size_t>& items, const InputContract& contract,
                                 torch::ScalarType storage, std::vector<std::string>& skipped) {
  // Written into the tensor as each photo is read (holding every photo's vector first took a
  // second copy of the whole set).
  torch::Tensor images = torch::empty({static_cast<std::int64_t>(items.size()), contract.channels(), contract.height, contract.width}, storage);
  std::vector<std::int64_t> labels;
  for (const std::size_t i : items) {
    const Expected<Image> image = dataset.load(i);
    Expected<std::vector<float>> input = image ? preprocess(*image, contract) : Expected<std::vector<float>>(image.status());
    if (!input) {
      skipped.push_back(dataset.item_name(i) + ": " + input.status().to_string());
      continue;
    }
    write_model_input(images[static_cast<std::int64_t>(labels.size())], *input);
    labels.push_back(dataset.label(i));
  }
  const auto n = static_cast<std::int64_t>(labels.size());
  if (n < images.size(0)) images = images.narrow(0, 0, n).clone();
  return TrainingData{images, torch::tensor(labels, torch::kInt64)};
}

// At most `limit` of `items` (0 = all), spread evenly: a folder lists its classes in turn.
std::vector<std::size_t> spread_subset(std::vector<std::size_t> items, std::size_t limit) {
  if (limit == 0 || items.size() <= limit) return items;
  std::vector<std::size_t> out;
  for (std::size_t k = 0; k < limit; ++k) out.push_back(items[k * items.size() / limit]);
  return out;
}

PortData load_port_data(const PortConfig& config, const ModelCard& card) {
  if (auto official = open_official_splits(config.dataset).value()) {
    PortData data{load_images(*official->train, config.train_images, card.input.channels(), card.input.height),
                  load_images(*official->test, config.eval_images, card.input.channels(), card.input.height), "", {}};
    data.eval_name = official->test->name() + "[:" + std::to_string(data.eval.images.size(0)) + "]";
    return data;
  }
  auto folder = open_dataset(config.dataset).value();
  PortData data;
  if (!config.validation.empty()) {
    auto validation = open_dataset(config.validation).value();
    std::vector<std::size_t> train_items(folder->size()), eval_items(validation->size());
    std::iota(train_items.begin(), train_items.end(), 0);
    std::iota(eval_items.begin(), eval_items.end(), 0);
    train_items = spread_subset(train_items, config.train_images);
    eval_items = spread_subset(eval_items, config.eval_images);
    data.train = preprocessed_images(*folder, train_items, card.input, torch::kHalf, data.skipped);
    data.eval = preprocessed_images(*validation, eval_items, card.input, torch::kFloat32, data.skipped);
    data.eval_name = validation->name() + " (" + std::to_string(data.eval.images.size(0)) + ")";
  } else {
    auto halves = split_items(folder->size(), SplitPolicy::kAlternate);
    std::vector<std::size_t>& train_items = halves[0];
    std::vector<std::size_t>& eval_items = halves[1];
    if (config.train_images > 0 && train_items.size() > config.train_images) train_items.resize(config.train_images);
    if (config.eval_images > 0 && eval_items.size() > config.eval_images) eval_items.resize(config.eval_images);
    data.train = preprocessed_images(*folder, train_items, card.input, torch::kHalf, data.skipped);
    data.eval = preprocessed_images(*folder, eval_items, card.input, torch::kFloat32, data.skipped);
    data.eval_name = folder->name() + " (odd items, " + std::to_string(data.eval.images.size(0)) + ")";
  }
  if (data.train.images.size(0) == 0 || data.eval.images.size(0) == 0) {
    throw Error(invalid_argument(config.dataset + ": too few readable images to adapt and evaluate on"));
  }
  return data;
}

// Goal demands for the tree: negated budgets (a larger budget is less demanding).
std::vector<std::vector<double>> demands_of(const std::vector<PortGoal>& goals) {
  constexpr double kNone = -std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> demands;
  for (const auto& g : goals) {
    demands.push_back({g.max_macs ? -static_cast<double>(*g.max_macs) : kNone, g.max_params ? -static_cast<double>(*g.max_params) : kNone,
                       g.max_memory_mb ? -*g.max_memory_mb : kNone,
                       // Latency budgets on different devices are not comparable: priced on one reference
                       // hardware they become comparable compute budgets.
                       g.max_latency_ms ? -*g.max_latency_ms * g.hardware.peak_gflops : kNone});
  }
  return demands;
}

// Whether two configs differ only in goals appended to one of them (a served port adds goals
// to its folder; a rerun of the original config must still resume there).
bool differ_by_appended_goals(const json& previous, const json& next) {
  if (!previous.is_object() || !previous.contains("goals") || !next.contains("goals")) return false;
  const json& a_goals = previous["goals"].size() <= next["goals"].size() ? previous["goals"] : next["goals"];
  const json& b_goals = previous["goals"].size() <= next["goals"].size() ? next["goals"] : previous["goals"];
  for (std::size_t i = 0; i < a_goals.size(); ++i) {
    if (a_goals[i] != b_goals[i]) return false;
  }
  json a = previous, b = next;
  a.erase("goals");
  b.erase("goals");
  return a == b;
}

json cost_json(const ArchCost& c) {
  return {{"macs", c.macs}, {"params", c.params}, {"peak_activation_bytes", c.peak_activation_bytes}, {"memory_mb", c.memory_mb()}};
}

json result_json(const GoalResult& r) {
  json j{{"goal", r.goal},
         {"parent", r.parent},
         {"constraints_met", r.constraints_met},
         {"accuracy_met", r.accuracy_met},
         {"cost", cost_json(r.cost)},
         {"measured_latency_ms", r.measured_latency_ms},
         {"accuracy", r.accuracy},
         {"adapt_steps", r.adapt_steps},
         {"adapt_seconds", r.adapt_seconds},
         {"finetune_seconds", r.finetune_seconds},
         {"finetune_steps", r.finetune_steps},
         {"model_file", r.model_file},
         {"card_file", r.card_file}};
  if (!r.onnx_file.empty()) j["onnx"] = {{"file", r.onnx_file}, {"max_relative_error", r.onnx_max_relative_error}};
  if (!r.onnx_error.empty()) j["onnx_error"] = r.onnx_error;
  if (r.estimated_latency_ms) j["estimated_latency_ms"] = *r.estimated_latency_ms;
  return j;
}

// `cost`: the produced model's, recomputed (its layers are not stored).
GoalResult result_from_json(const json& j, const ArchCost& cost) {
  GoalResult r;
  r.goal = j.at("goal");
  r.parent = j.at("parent");
  r.constraints_met = j.at("constraints_met");
  r.accuracy_met = j.at("accuracy_met");
  r.cost = cost;
  r.measured_latency_ms = j.at("measured_latency_ms");
  r.accuracy = j.at("accuracy");
  r.adapt_steps = j.at("adapt_steps");
  r.adapt_seconds = j.at("adapt_seconds");
  r.finetune_seconds = j.at("finetune_seconds");
  r.finetune_steps = j.value("finetune_steps", 0);
  r.model_file = j.at("model_file");
  r.card_file = j.at("card_file");
  if (j.contains("onnx")) {
    r.onnx_file = j["onnx"].at("file");
    r.onnx_max_relative_error = j["onnx"].at("max_relative_error");
  }
  r.onnx_error = j.value("onnx_error", "");
  if (j.contains("estimated_latency_ms")) r.estimated_latency_ms = j["estimated_latency_ms"].get<double>();
  return r;
}

// A module port wrote (or is about to), as the base is read: by its ArchSpec or its graph.
PrunableModel reloaded(const torch::jit::Module& module, const PrunableModel& base, const std::vector<std::int64_t>& input_shape) {
  if (base.graph) return graph_model(module, input_shape, base.graph->probe()).value();
  PrunableModel model;
  model.module = module;
  model.spec = arch_spec_of(module).value();
  return model;
}

double measured_latency(const ModelCard& card) {
  auto classifier = load_classifier(card).value();
  return measure_latency(*classifier, 1, 5, 30).value().median_ms;
}

std::string constraints_text(const PortGoal& g) {
  std::ostringstream out;
  auto add = [&](const std::string& s) { out << (out.tellp() > 0 ? ", " : "") << s; };
  if (!g.device.empty()) add("device " + g.device);
  if (g.max_macs) add("MACs <= " + std::to_string(*g.max_macs));
  if (g.max_params) add("params <= " + std::to_string(*g.max_params));
  if (g.max_memory_mb) {
    std::ostringstream mb;
    mb << "memory <= " << *g.max_memory_mb << " MB";
    add(mb.str());
  }
  if (g.max_latency_ms) {
    std::ostringstream ms;
    ms << "latency <= " << *g.max_latency_ms << " ms";
    add(ms.str());
  }
  if (g.min_accuracy) {
    std::ostringstream a;
    a << "top-1 >= " << 100 * *g.min_accuracy << "%";
    add(a.str());
  }
  return out.str();
}

}  // namespace

Expected<PortResult> run_port(const PortConfig& config_in, const std::string& out_dir, const std::function<void(const PortProgress&)>& on_progress) {
  return capture([&] {
    PortConfig config = config_in;
    torch::set_num_threads(resolve_thread_count(config.threads));
    torch::manual_seed(config.seed);
    const ModelCard base_card = resolve_model(config.base_model).value();
    if (base_card.format != ModelFormat::kTorchScript) throw Error(unsupported(base_card.name + ": porting needs a TorchScript model"));
    const fs::path out(out_dir);
    fs::create_directories(out);
    const json config_json = port_config_to_json(config);
    const fs::path config_file = out / "config.json";
    // Written once every goal has been checked: a refused goal must not enter the folder.
    bool write_config = true;
    if (fs::exists(config_file)) {
      std::ifstream in(config_file);
      const json previous = json::parse(in, nullptr, false);
      if (previous != config_json && !differ_by_appended_goals(previous, config_json)) {
        throw Error(invalid_argument(out_dir + " holds a port of a different config; use another folder (nothing there was changed)"));
      }
      write_config = previous.contains("goals") && config_json["goals"].size() > previous["goals"].size();
    }

    // A measured latency model prices the graph the base's Classifier runs (its variants
    // keep its operations): the base loaded once per thread count the goals' models name.
    std::map<int, InferenceGraph> graph_at_threads;
    for (auto& goal : config.goals) {
      if (!goal.latency_predictor) continue;
      const int threads = goal.latency_predictor->threads;
      if (!graph_at_threads.count(threads)) {
        LoadOptions load;
        load.threads = threads;
        graph_at_threads[threads] = load_classifier(base_card, load).value()->batch1_graph();
      }
      goal.latency_graph = graph_at_threads.at(threads);
    }
    torch::set_num_threads(resolve_thread_count(config.threads));

    PrunableModel base;
    PortResult result;
    const std::vector<std::int64_t> input_shape = {1, base_card.input.channels(), base_card.input.height, base_card.input.width};
    torch::jit::Module source = torch::jit::load((fs::path(base_card.card_path).parent_path() / base_card.file).string());
    source.eval();
    if (base_card.architecture_spec.is_null()) {
      // A sequential classifier becomes a zoo architecture (every executor, the fast path);
      // any other graph is pruned through its channel groups.
      auto imported = base_card.input.height == base_card.input.width ? import_sequential_classifier(source, base_card.input.height)
                                                                      : Expected<ImportedModel>(unsupported("not square"));
      if (imported) {
        base.spec = imported->spec;
        base.module = imported->module;
        std::ostringstream note;
        note << "imported from its TorchScript graph as " << base.spec.layers.size() << " layers; logits equal to the source's within "
             << imported->max_logit_difference;
        result.imported = note.str();
      } else {
        auto graph = graph_model(source, input_shape);
        if (!graph) throw Error(Status(graph.status().code(), base_card.name + ": " + graph.status().message()));
        base = *graph;
        int prunable = 0;
        for (const auto& g : base.graph->groups()) prunable += g.prunable ? 1 : 0;
        result.imported = "read through its TorchScript graph: " + std::to_string(base.graph->groups().size()) + " channel groups, " +
                          std::to_string(prunable) + " prunable (" + imported.status().message() + " as a sequential model)";
      }
    } else {
      base.spec = arch_spec_of(source).value();
      base.module = source;
    }
    base.module.eval();
    for (const auto& goal : config.goals) {
      // Unsatisfiable: not even one channel per group meets it.
      std::map<std::string, int> narrowest = group_widths(base);
      for (auto& [name, width] : narrowest) width = rounded_width(1, width, config.channel_multiple);
      const Measurement floor = measure(base, narrowest, goal, config.latency_model);
      if (!meets(floor, goal)) {
        throw Error(invalid_argument("goal '" + goal.name + "' cannot be met by " + base_card.name + " even at its narrowest widths (" +
                                     std::to_string(floor.cost.macs) + " MACs, " + std::to_string(floor.cost.params) + " params)"));
      }
    }

    PortData data = load_port_data(config, base_card);
    const TrainingData& eval = data.eval;
    if (base.graph) {
      // The channel means pruning folds into the next layer, measured on training photos
      // (spread over the classes) instead of the import's noise.
      const auto n = data.train.images.size(0);
      const auto probe = model_input(
          data.train.images.index_select(0, torch::linspace(0, static_cast<double>(n - 1), std::min<std::int64_t>(32, n)).to(torch::kLong)));
      base = graph_model(source, input_shape, probe).value();
    }
    // The proxy images (the evolutionary proxy scores on them; a plateau rule watches them)
    // are spread over the training images: a folder lists its photos class by class, so its
    // tail would be its last classes alone. The loaded photos are reordered, not copied.
    const auto proxy_count = std::min<std::int64_t>(config.evolution.proxy_images, data.train.images.size(0));
    const HeldOutSplit split = hold_out_spread(std::move(data.train), proxy_count);
    const TrainingData& train = split.all;
    const TrainingData& proxy = split.held_out;
    const TrainingData& rest = split.rest;
    // A fine-tuning that stops on a plateau watches the proxy images, so it does not train on them.
    const bool plateau = config.finetune.patience > 0;
    const TrainingData& tune = plateau ? rest : train;
    if (plateau && (proxy_count == 0 || tune.images.size(0) == 0)) {
      throw Error(invalid_argument("finetune.patience needs training images beyond evolution.proxy_images (" + std::to_string(proxy_count) + ")"));
    }

    result.base_model = base_card.name;
    result.skipped = data.skipped;
    result.base_cost = cost_at(base, {});
    result.base_accuracy = top1_accuracy(base.module, eval);
    result.base_measured_latency_ms = measured_latency(base_card);

    const auto tree_started = std::chrono::steady_clock::now();
    const GoalTree tree = build_goal_tree(demands_of(config.goals));
    result.tree_ms = seconds_since(tree_started) * 1e3;
    for (const auto& goal : config.goals) {
      if (goal.min_accuracy && *goal.min_accuracy > result.base_accuracy) {
        throw Error(invalid_argument("goal '" + goal.name + "' asks for top-1 >= " + std::to_string(*goal.min_accuracy) +
                                     " but the base model itself reaches " + std::to_string(result.base_accuracy)));
      }
    }
    if (write_config) write_file_atomically(config_json.dump(1), config_file.string());

    std::vector<std::optional<GoalResult>> done(config.goals.size());
    std::vector<std::optional<PrunableModel>> adapted(config.goals.size());
    auto executor = make_executor(config, train, proxy);
    for (const int index : tree.order) {
      const PortGoal& goal = config.goals[static_cast<std::size_t>(index)];
      const int parent = config.mode == PortMode::kCollective ? tree.parent[static_cast<std::size_t>(index)] : -1;
      const fs::path adapted_file = out / (goal.name + ".adapted.pt");
      const fs::path result_file = out / (goal.name + ".result.json");
      const fs::path search_file = out / (goal.name + ".search.json");
      const bool has_children = config.mode == PortMode::kCollective && !tree.children[static_cast<std::size_t>(index)].empty();
      if (fs::exists(result_file) && fs::exists(adapted_file)) {
        std::ifstream in(result_file);
        const json j = json::parse(in);
        if (has_children) {
          // Children start from what this goal handed on: its fine-tuned or its adapted model.
          const fs::path handed_on = config.finetune_from_parent ? out / j.at("model_file").get<std::string>() : adapted_file;
          adapted[static_cast<std::size_t>(index)] = reloaded(torch::jit::load(handed_on.string()), base, input_shape);
          if (fs::exists(search_file)) {
            std::ifstream search(search_file);
            executor->restore_search_state(goal.name, json::parse(search, nullptr, false));
          }
        }
        const PrunableModel final_model = reloaded(torch::jit::load((out / j.at("model_file").get<std::string>()).string()), base, input_shape);
        done[static_cast<std::size_t>(index)] = result_from_json(j, cost_at(final_model, {}));
        if (on_progress) on_progress({goal.name, "resumed", 0.0});
        continue;
      }

      GoalResult r;
      r.goal = goal.name;
      r.parent = parent >= 0 ? config.goals[static_cast<std::size_t>(parent)].name : "";
      const PrunableModel& start = parent >= 0 ? *adapted[static_cast<std::size_t>(parent)] : base;
      const auto adapt_started = std::chrono::steady_clock::now();
      executor->init(start, goal, r.parent);
      int steps = 0;
      // Bounds a goal the executor cannot reach (reported unmet): MorphNet's knob; the width
      // steps of L1 reach the narrowest widths long before; evolution's extra generations.
      const int max_steps = config.algorithm == PortAlgorithm::kMorphNet    ? config.morphnet.max_steps
                            : config.algorithm == PortAlgorithm::kEvolution ? config.evolution.generations + 20
                                                              : 10000;
      while (!executor->finished(meets(executor->measure_current(config.latency_model), goal)) && steps < max_steps) {
        executor->adjust();
        ++steps;
      }
      PrunableModel model = executor->result();
      r.adapt_steps = steps;
      r.adapt_seconds = seconds_since(adapt_started);
      model.module.eval();
      // Kept for every goal: a goal added later may hang under any of them.
      replace_atomically(adapted_file.string(), [&](const std::string& tmp) { model.module.save(tmp); });
      if (const json search = executor->search_state(); !search.is_null()) write_file_atomically(search.dump(), search_file.string());
      if (on_progress) on_progress({goal.name, "adapted", r.adapt_seconds});
      if (has_children && !config.finetune_from_parent) adapted[static_cast<std::size_t>(index)] = clone_model(model);

      // A goal its parent's fine-tuned model already meets is that model: the executor removed
      // nothing (and MorphNet did not train), so there is nothing to recover.
      const bool parent_as_is = parent >= 0 && config.finetune_from_parent && group_widths(model) == group_widths(start) &&
                                (config.algorithm != PortAlgorithm::kMorphNet || steps == 0);
      const bool parent_teaches = parent >= 0 && config.distill_from_parent;
      torch::jit::Module teacher = parent_teaches ? start.module : base.module;
      const auto tune_started = std::chrono::steady_clock::now();
      // An interrupted fine-tuning continues from its last checkpoint once its goal is adapted
      // again (to the same widths: a checkpoint of other shapes is not used).
      const FinetuneCheckpoint checkpoint{(out / (goal.name + ".finetune.ckpt")).string(), plateau ? config.finetune.check_every : 50};
      r.finetune_steps = parent_as_is ? 0
                                      : train_steps(model.module, tune, config.finetune, config.seed + static_cast<std::uint64_t>(index),
                                                    teacher_of(teacher, config.finetune.temperature), {}, plateau ? &proxy : nullptr,
                                                    &checkpoint);
      r.finetune_seconds = seconds_since(tune_started);
      if (has_children && config.finetune_from_parent) adapted[static_cast<std::size_t>(index)] = clone_model(model);
      if (on_progress) on_progress({goal.name, "fine-tuned", r.finetune_seconds});

      // Measured on the produced model itself: its spec as stored in the module (or its graph
      // read again), its accuracy.
      const PrunableModel produced = reloaded(model.module, base, input_shape);
      const Measurement m = measure(produced, {}, goal, config.latency_model);
      r.cost = m.cost;
      r.estimated_latency_ms = m.latency_ms;
      r.constraints_met = meets(m, goal);
      r.accuracy = top1_accuracy(model.module, eval);
      r.accuracy_met = !goal.min_accuracy || r.accuracy >= *goal.min_accuracy;

      r.model_file = goal.name + ".pt";
      r.card_file = goal.name + ".json";
      const fs::path pt = out / r.model_file;
      replace_atomically(pt.string(), [&](const std::string& tmp) { model.module.save(tmp); });
      ModelCard card = base_card;
      card.name = base_card.name + "-" + goal.name;
      card.file = r.model_file;
      card.sha256 = sha256_file(pt.string()).value();
      card.architecture = base_card.architecture + ", ported to goal " + goal.name + " (" + port_algorithm_name(config.algorithm) + ")";
      card.architecture_spec = produced.graph ? json() : json(produced.spec);
      card.params = r.cost.params;
      card.macs = r.cost.macs;
      card.accuracy = AccuracyRecord{data.eval_name, static_cast<std::size_t>(eval.images.size(0)), r.accuracy, 0.0};
      card.training = {{"ported_from", base_card.name}, {"goal", goal.name}, {"parent", r.parent}, {"algorithm", port_algorithm_name(config.algorithm)},
                       {"mode", port_mode_name(config.mode)}, {"finetune_steps", r.finetune_steps},
                       {"teacher", parent_teaches ? r.parent : "base"}};
      card.provenance = {{"ported_by", "edgefleet port"}, {"libtorch", TORCH_VERSION}};
      // The source card's measurements and notes describe the source model, not this one.
      card.latency_ms = nullptr;
      card.raw = json::object();
      const fs::path card_path = out / r.card_file;
      const Status written = write_card(card, card_path.string());
      if (!written.is_ok()) throw Error(written);
      card.card_path = fs::absolute(card_path).string();
      r.measured_latency_ms = measured_latency(card);
      // A variant ONNX cannot express stays a TorchScript variant; the reason is reported.
      if (auto onnx = export_onnx(card, (out / (goal.name + ".onnx")).string()); onnx) {
        r.onnx_file = goal.name + ".onnx";
        r.onnx_max_relative_error = onnx->check.max_relative_error;
      } else {
        r.onnx_error = onnx.status().message();
      }
      write_file_atomically(result_json(r).dump(1), result_file.string());
      fs::remove(checkpoint.file);
      done[static_cast<std::size_t>(index)] = r;
    }

    for (std::size_t i = 0; i < config.goals.size(); ++i) {
      result.goals.push_back(*done[i]);
      result.adapt_seconds += done[i]->adapt_seconds;
      result.finetune_seconds += done[i]->finetune_seconds;
    }
    json all{{"base_model", result.base_model}, {"imported", result.imported}, {"base_cost", cost_json(result.base_cost)}, {"base_accuracy", result.base_accuracy},
             {"base_measured_latency_ms", result.base_measured_latency_ms}, {"tree_ms", result.tree_ms},
             {"adapt_seconds", result.adapt_seconds}, {"finetune_seconds", result.finetune_seconds}, {"goals", json::array()}};
    for (const auto& g : result.goals) all["goals"].push_back(result_json(g));
    write_file_atomically(all.dump(1), (out / "port.json").string());
    write_file_atomically(port_summary_markdown(config, result), (out / "summary.md").string());
    LinePlot plot{"Ported variants of " + result.base_model, "MACs (millions)", "top-1 %", {}};
    plot.series["base"].push_back({result.base_cost.macs / 1e6, 100 * result.base_accuracy});
    for (const auto& g : result.goals) plot.series["variants"].push_back({g.cost.macs / 1e6, 100 * g.accuracy});
    std::sort(plot.series["variants"].begin(), plot.series["variants"].end());
    (void)write_line_plot_svg(plot, (out / "summary.svg").string());  // optional: gnuplot may be absent
    return result;
  });
}

std::string port_summary_markdown(const PortConfig& config, const PortResult& result) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(2);
  out << "Base " << result.base_model << ": " << result.base_cost.macs << " MACs, " << result.base_cost.params << " params, top-1 "
      << 100 * result.base_accuracy << "%, " << result.base_measured_latency_ms << " ms measured (batch 1, this machine). "
      << port_algorithm_name(config.algorithm) << ", " << port_mode_name(config.mode) << "; goal tree built in " << result.tree_ms << " ms.\n\n";
  if (!result.imported.empty()) out << "The base model was " << result.imported << ".\n\n";
  if (!result.skipped.empty()) {
    out << result.skipped.size() << " unreadable photos were skipped, e.g. " << result.skipped.front() << ".\n\n";
  }
  out << "| goal | constraints | adapted from | MACs | params | memory MB | est. latency ms | measured ms | speed-up | top-1 % | met | adapt s | fine-tune s |\n";
  out << "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n";
  for (std::size_t i = 0; i < result.goals.size(); ++i) {
    const auto& g = result.goals[i];
    out << "| " << g.goal << " | " << constraints_text(config.goals[i]) << " | " << (g.parent.empty() ? "base" : g.parent) << " | "
        << g.cost.macs << " | " << g.cost.params << " | " << g.cost.memory_mb() << " | "
        << (g.estimated_latency_ms ? std::to_string(*g.estimated_latency_ms).substr(0, 6) : std::string("-")) << " | "
        << g.measured_latency_ms << " | " << result.base_measured_latency_ms / g.measured_latency_ms << "x | " << 100 * g.accuracy
        << " | " << (g.constraints_met && g.accuracy_met ? "yes" : (g.constraints_met ? "constraints only" : "NO")) << " | "
        << g.adapt_seconds << " | " << g.finetune_seconds << " |\n";
  }
  for (const auto& g : result.goals) {
    if (!g.onnx_error.empty()) out << "\n" << g.goal << " has no ONNX copy: " << g.onnx_error << "\n";
  }
  out << "\nTotal: adaptation " << result.adapt_seconds << " s, fine-tuning " << result.finetune_seconds << " s.\n";
  return out.str();
}

}  // namespace edgefleet
