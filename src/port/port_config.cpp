#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/json_fields.h"
#include "core/named_values.h"
#include "edgefleet/dataset.h"
#include "edgefleet/port.h"

namespace edgefleet {
namespace {

using nlohmann::json;

using json_fields::at_least;
using json_fields::check_keys;
using json_fields::fail;
using json_fields::positive;
using json_fields::read_bool;
using json_fields::read_number;
using json_fields::read_string;

const NamedValues<PortAlgorithm> kAlgorithms = {
    {"morphnet", PortAlgorithm::kMorphNet}, {"evolution", PortAlgorithm::kEvolution}, {"l1", PortAlgorithm::kL1},
    {"sensitivity", PortAlgorithm::kSensitivity}};
const NamedValues<PortMode> kModes = {{"collective", PortMode::kCollective}, {"independent", PortMode::kIndependent}};
const NamedValues<LatencyModel> kLatencyModels = {{"sum", LatencyModel::kSum}, {"roofline", LatencyModel::kRoofline}};
const NamedValues<FinetuneOptimizer> kOptimizers = {{"sgd", FinetuneOptimizer::kSgd}, {"adamw", FinetuneOptimizer::kAdamW}};

// An optional string field holding one of `table`'s names (`where`: the enclosing object's
// prefix, e.g. "finetune.").
template <typename T>
void read_named(const json& j, const char* key, const NamedValues<T>& table, T& out, const std::string& origin, const std::string& where = "") {
  if (!j.contains(key)) return;
  std::string name;
  read_string(j, key, name, origin, where);
  auto value = parse_named(table, where + key, name);
  if (!value) fail(origin, value.status().message());
  out = *value;
}

PortGoal goal_from_json(const json& g, std::size_t index, const std::string& origin, const std::string& fleet_dir) {
  const std::string where = "goals[" + std::to_string(index) + "].";
  if (!g.is_object()) fail(origin, where.substr(0, where.size() - 1) + " must be an object");
  check_keys(g, {"name", "device", "max_macs", "max_params", "max_memory_mb", "max_latency_ms", "min_accuracy"}, origin, where);
  PortGoal goal;
  if (!g.contains("name") || !g["name"].is_string() || g["name"].get<std::string>().empty()) fail(origin, where + "name must be a non-empty string");
  goal.name = g["name"].get<std::string>();
  if (goal.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != std::string::npos) {
    fail(origin, where + "name '" + goal.name + "' may hold only letters, digits, '_', '.', '-' (it names files)");
  }
  if (g.contains("device")) {
    if (!g["device"].is_string()) fail(origin, where + "device must be a string");
    goal.device = g["device"].get<std::string>();
    auto profile = find_device(fleet_dir, goal.device);
    if (!profile) fail(origin, where + "device: " + profile.status().message());
    goal.hardware = profile.value().hardware;
    if (goal.hardware.memory_mb > 0) goal.max_memory_mb = goal.hardware.memory_mb;
    if (!profile.value().latency_model.empty()) {
      auto predictor = latency_predictor_from_json(nlohmann::json::parse(profile.value().latency_model), profile.value().path);
      if (!predictor) fail(origin, where + "device: " + predictor.status().message());
      goal.latency_predictor = std::make_shared<const LatencyPredictor>(std::move(*predictor));
    }
  }
  if (g.contains("max_macs")) read_number(g, "max_macs", goal.max_macs.emplace(), origin, where, at_least(1, 1e18));
  if (g.contains("max_params")) read_number(g, "max_params", goal.max_params.emplace(), origin, where, at_least(1, 1e18));
  if (g.contains("max_memory_mb")) {
    double mb = 0;
    read_number(g, "max_memory_mb", mb, origin, where, positive(1e9));
    if (goal.max_memory_mb && mb > *goal.max_memory_mb) {
      fail(origin, where + "max_memory_mb " + std::to_string(mb) + " contradicts device '" + goal.device + "', which has " +
                       std::to_string(*goal.max_memory_mb) + " MB");
    }
    goal.max_memory_mb = mb;
  }
  if (g.contains("max_latency_ms")) {
    read_number(g, "max_latency_ms", goal.max_latency_ms.emplace(), origin, where, positive(1e9));
    if (goal.device.empty()) fail(origin, where + "max_latency_ms needs a 'device' whose latency model or hardware prices the latency");
    if (!goal.latency_predictor && (!(goal.hardware.peak_gflops > 0) || !(goal.hardware.memory_bandwidth_gbs > 0))) {
      fail(origin, where + "device '" + goal.device + "' has no latency_model and lacks peak_gflops or memory_bandwidth_gbs, so latency cannot be estimated");
    }
  }
  if (g.contains("min_accuracy")) {
    read_number(g, "min_accuracy", goal.min_accuracy.emplace(), origin, where, positive(1));
  }
  if (!goal.max_macs && !goal.max_params && !goal.max_memory_mb && !goal.max_latency_ms) {
    fail(origin, where + "goal '" + goal.name + "' constrains nothing: give a device or max_macs, max_params, max_memory_mb, max_latency_ms");
  }
  return goal;
}

}  // namespace

Expected<PortAlgorithm> parse_port_algorithm(const std::string& name) { return parse_named(kAlgorithms, "algorithm", name); }
std::string port_algorithm_name(PortAlgorithm algorithm) { return name_of(kAlgorithms, algorithm); }
std::vector<std::string> port_algorithm_names() { return names_of(kAlgorithms); }
Expected<PortMode> parse_port_mode(const std::string& name) { return parse_named(kModes, "mode", name); }
std::string port_mode_name(PortMode mode) { return name_of(kModes, mode); }
std::vector<std::string> port_mode_names() { return names_of(kModes); }
Expected<FinetuneOptimizer> parse_finetune_optimizer(const std::string& name) { return parse_named(kOptimizers, "optimizer", name); }
std::vector<std::string> finetune_optimizer_names() { return names_of(kOptimizers); }
std::string latency_model_name(LatencyModel model) { return name_of(kLatencyModels, model); }

Expected<PortConfig> port_config_from_json(const json& j, const std::string& origin, const std::string& fleet_dir) {
  return capture([&] {
    if (!j.is_object()) fail(origin, "expected a JSON object");
    check_keys(j, {"base_model", "dataset", "validation", "algorithm", "mode", "latency_model", "channel_multiple", "morphnet", "evolution", "finetune", "train_images",
                   "eval_images", "threads", "seed", "goals"},
               origin, "");
    PortConfig c;
    if (!j.contains("base_model") || !j["base_model"].is_string()) fail(origin, "base_model must name a model card or a built-in model");
    c.base_model = j["base_model"].get<std::string>();
    read_string(j, "dataset", c.dataset, origin, "");
    if (!names_builtin_dataset(c.dataset) && !std::filesystem::is_directory(c.dataset)) {
      fail(origin, "dataset '" + c.dataset + "' is neither fashion-mnist nor an image folder (one sub-folder per class)");
    }
    read_string(j, "validation", c.validation, origin, "");
    if (!c.validation.empty()) {
      if (names_builtin_dataset(c.dataset)) fail(origin, "validation: fashion-mnist brings its own test split");
      if (!std::filesystem::is_directory(c.validation)) fail(origin, "validation '" + c.validation + "' is not an image folder");
    }
    read_named(j, "algorithm", kAlgorithms, c.algorithm, origin);
    read_named(j, "mode", kModes, c.mode, origin);
    read_named(j, "latency_model", kLatencyModels, c.latency_model, origin);
    read_number(j, "channel_multiple", c.channel_multiple, origin, "", at_least(1, 1024));
    if (j.contains("morphnet")) {
      const json& m = j["morphnet"];
      if (!m.is_object()) fail(origin, "morphnet must be an object");
      check_keys(m, {"strength", "threshold", "learning_rate", "batch", "reschedule_every", "max_steps"}, origin, "morphnet.");
      read_number(m, "strength", c.morphnet.strength, origin, "morphnet.", positive(1e6));
      read_number(m, "threshold", c.morphnet.threshold, origin, "morphnet.", positive(1e6));
      read_number(m, "learning_rate", c.morphnet.learning_rate, origin, "morphnet.", positive(100));
      read_number(m, "batch", c.morphnet.batch, origin, "morphnet.", at_least(1, 65536));
      read_number(m, "reschedule_every", c.morphnet.reschedule_every, origin, "morphnet.", at_least(1, 1e7));
      read_number(m, "max_steps", c.morphnet.max_steps, origin, "morphnet.", at_least(1, 1e7));
    }
    if (j.contains("evolution")) {
      const json& e = j["evolution"];
      if (!e.is_object()) fail(origin, "evolution must be an object");
      check_keys(e, {"population", "generations", "proxy_images", "mutation"}, origin, "evolution.");
      read_number(e, "population", c.evolution.population, origin, "evolution.", at_least(2, 100000));
      read_number(e, "generations", c.evolution.generations, origin, "evolution.", at_least(1, 100000));
      read_number(e, "proxy_images", c.evolution.proxy_images, origin, "evolution.", at_least(1, 1e7));
      read_number(e, "mutation", c.evolution.mutation, origin, "evolution.", positive(1));
    }
    if (j.contains("finetune")) {
      const json& f = j["finetune"];
      if (!f.is_object()) fail(origin, "finetune must be an object");
      check_keys(f, {"steps", "batch", "learning_rate", "distill", "distill_weight", "temperature", "augment", "patience", "check_every", "min_gain",
                     "from_parent", "frozen_batch_norm", "teacher", "optimizer"},
                 origin, "finetune.");
      read_number(f, "patience", c.finetune.patience, origin, "finetune.", at_least(0, 1000));
      read_number(f, "check_every", c.finetune.check_every, origin, "finetune.", at_least(1, 1e7));
      read_number(f, "min_gain", c.finetune.min_gain, origin, "finetune.", at_least(0, 1));
      read_bool(f, "frozen_batch_norm", c.finetune.frozen_batch_norm, origin, "finetune.");
      read_named(f, "optimizer", kOptimizers, c.finetune.optimizer, origin, "finetune.");
      if (f.contains("from_parent")) {
        if (!f["from_parent"].is_boolean()) fail(origin, "finetune.from_parent must be true or false");
        c.finetune_from_parent = f["from_parent"].get<bool>();
      }
      if (f.contains("teacher")) {
        if (f["teacher"] != "base" && f["teacher"] != "parent") fail(origin, "finetune.teacher must be \"base\" or \"parent\"");
        c.distill_from_parent = f["teacher"] == "parent";
        if (c.distill_from_parent && !c.finetune_from_parent) {
          fail(origin, "finetune.teacher \"parent\" needs finetune.from_parent: the teacher is the parent goal's fine-tuned model");
        }
      }
      read_number(f, "steps", c.finetune.steps, origin, "finetune.", at_least(0, 1e7));
      read_number(f, "batch", c.finetune.batch, origin, "finetune.", at_least(1, 65536));
      read_number(f, "learning_rate", c.finetune.learning_rate, origin, "finetune.", positive(100));
      read_number(f, "distill_weight", c.finetune.distill_weight, origin, "finetune.", at_least(0, 1));
      read_number(f, "temperature", c.finetune.temperature, origin, "finetune.", positive(1000));
      if (f.contains("augment")) {
        if (!f["augment"].is_boolean()) fail(origin, "finetune.augment must be true or false");
        c.finetune.augment = f["augment"].get<bool>();
      }
      if (f.contains("distill")) {
        if (!f["distill"].is_boolean()) fail(origin, "finetune.distill must be true or false");
        c.finetune.distill = f["distill"].get<bool>();
      }
    }
    read_number(j, "train_images", c.train_images, origin, "", at_least(0, 1e8));
    read_number(j, "eval_images", c.eval_images, origin, "", at_least(0, 1e8));
    read_number(j, "threads", c.threads, origin, "", at_least(0, 1024));
    read_number(j, "seed", c.seed, origin, "", at_least(0, json_fields::kMaxSeed));
    if (!j.contains("goals") || !j["goals"].is_array() || j["goals"].empty()) fail(origin, "goals must be a non-empty list");
    std::set<std::string> names;
    for (std::size_t i = 0; i < j["goals"].size(); ++i) {
      c.goals.push_back(goal_from_json(j["goals"][i], i, origin, fleet_dir));
      if (!names.insert(c.goals.back().name).second) fail(origin, "goal name '" + c.goals.back().name + "' is used twice");
    }
    return c;
  });
}

Expected<PortGoal> port_goal_from_json(const json& j, const std::string& origin, const std::string& fleet_dir) {
  return capture([&] { return goal_from_json(j, 0, origin, fleet_dir); });
}

Expected<PortConfig> read_port_config(const std::string& path, const std::string& fleet_dir) {
  std::ifstream in(path);
  if (!in) return not_found(path + ": cannot open the port config");
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument(path + ": not valid JSON");
  return port_config_from_json(j, path, fleet_dir);
}

json port_config_to_json(const PortConfig& c) {
  json goals = json::array();
  for (const auto& g : c.goals) {
    json o{{"name", g.name}};
    if (!g.device.empty()) o["device"] = g.device;
    if (g.max_macs) o["max_macs"] = *g.max_macs;
    if (g.max_params) o["max_params"] = *g.max_params;
    if (g.max_memory_mb) o["max_memory_mb"] = *g.max_memory_mb;
    if (g.max_latency_ms) o["max_latency_ms"] = *g.max_latency_ms;
    if (g.min_accuracy) o["min_accuracy"] = *g.min_accuracy;
    goals.push_back(o);
  }
  json out = {{"base_model", c.base_model},
          {"dataset", c.dataset},
          {"algorithm", port_algorithm_name(c.algorithm)},
          {"mode", port_mode_name(c.mode)},
          {"latency_model", latency_model_name(c.latency_model)},
          {"channel_multiple", c.channel_multiple},
          {"morphnet",
           {{"strength", c.morphnet.strength},
            {"threshold", c.morphnet.threshold},
            {"learning_rate", c.morphnet.learning_rate},
            {"batch", c.morphnet.batch},
            {"reschedule_every", c.morphnet.reschedule_every},
            {"max_steps", c.morphnet.max_steps}}},
          {"evolution",
           {{"population", c.evolution.population},
            {"generations", c.evolution.generations},
            {"proxy_images", c.evolution.proxy_images},
            {"mutation", c.evolution.mutation}}},
          {"finetune",
           {{"steps", c.finetune.steps},
            {"batch", c.finetune.batch},
            {"learning_rate", c.finetune.learning_rate},
            {"distill", c.finetune.distill},
            {"augment", c.finetune.augment},
            {"distill_weight", c.finetune.distill_weight},
            {"temperature", c.finetune.temperature}}},
          {"train_images", c.train_images},
          {"eval_images", c.eval_images},
          {"threads", c.threads},
          {"seed", c.seed},
          {"goals", goals}};
  if (!c.validation.empty()) out["validation"] = c.validation;
  // Written only when set: folders ported before these existed still resume.
  if (c.finetune.patience > 0) {
    out["finetune"]["patience"] = c.finetune.patience;
    out["finetune"]["check_every"] = c.finetune.check_every;
    if (c.finetune.min_gain > 0) out["finetune"]["min_gain"] = c.finetune.min_gain;
  }
  if (c.finetune_from_parent) out["finetune"]["from_parent"] = true;
  if (c.distill_from_parent) out["finetune"]["teacher"] = "parent";
  if (c.finetune.frozen_batch_norm) out["finetune"]["frozen_batch_norm"] = true;  // absent before it existed: resumes still match
  if (c.finetune.optimizer != FinetuneOptimizer::kSgd) out["finetune"]["optimizer"] = name_of(kOptimizers, c.finetune.optimizer);
  return out;
}

}  // namespace edgefleet
