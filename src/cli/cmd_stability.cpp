// edgefleet stability run|merge|summary|check|explain
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "core/atomic_file.h"
#include "edgefleet/dataset.h"
#include "edgefleet/model_card.h"
#include "edgefleet/shard.h"
#include "edgefleet/stability_axes.h"
#include "edgefleet/stability_experiment.h"
#include "edgefleet/stability_explain.h"
#include "edgefleet/stability_gate.h"
#include "edgefleet/stability_report.h"
#include "edgefleet/stability_run.h"
#include "edgefleet/stability_summary.h"

namespace edgefleet::cli {
namespace {

struct StabilityArgs {
  std::string model;
  std::string data;
  std::string fleet;
  std::string vary;
  std::string capture;
  std::string deployment;
  int repeats = 0;
  std::string common_isp;
  std::vector<std::string> envs;
  std::string experiment_file;
  std::vector<std::string> axes;
  std::string calibration;
  std::size_t calibration_size = 100;
  std::string out;
  std::string shard;  // "" = from the scheduler's environment, else 0/1
  int shard_count = 0;
  std::vector<std::string> shards;
  int batch = 32;
  int threads = 0;
  std::size_t limit = 0;
  int top_k = 3;
  std::string reference;
  std::string baseline;
  GateOptions gate;
  std::size_t explain_top = 3;
};

// Class names and gallery thumbnails for the report, from the run's dataset.
StabilityReportExtras report_extras(const nlohmann::json& summary, const Dataset* data) {
  StabilityReportExtras extras;
  if (!data) return extras;
  extras.class_names = data->classes().names;
  std::set<std::string> wanted;
  for (const auto& item : summary["most_unstable"]) wanted.insert(item["input"].get<std::string>());
  for (std::size_t i = 0; i < data->size() && !wanted.empty(); ++i) {
    const std::string name = data->item_name(i);
    if (!wanted.count(name)) continue;
    wanted.erase(name);
    auto image = data->load(i);
    if (!image) continue;  // a corrupt input has no picture; the gallery shows its name
    if (auto uri = thumbnail_data_uri(*image)) extras.thumbnails[name] = std::move(*uri);
  }
  return extras;
}

// OUT/summary.json and OUT/report.html; the explanations of OUT/explain.json (stability
// explain), when there, go into both (the report's gallery links to them).
Status write_summary_and_report(nlohmann::json summary, const std::string& out, const Dataset* data) {
  if (!summary.contains("explanations")) {
    std::ifstream explain(out + "/explain.json");
    if (explain) {
      auto parsed = nlohmann::json::parse(explain, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded() || !parsed.is_array()) return corrupt(out + "/explain.json is not a list of explanations");
      summary["explanations"] = std::move(parsed);
    }
  }
  const std::string path = out + "/summary.json";
  write_file_atomically(summary.dump(1) + "\n", path);
  write_file_atomically(stability_report_html(summary, report_extras(summary, data)), out + "/report.html");
  return Status::ok();
}

Status write_summary(const ResultsStore& store, const StabilityArgs& args, const Dataset* data) {
  InstabilityOptions options;
  options.top_k = args.top_k;
  if (!args.reference.empty()) {
    auto environments = store.environments();
    if (!environments) return environments.status();
    options.reference = -1;
    for (std::size_t e = 0; e < environments->size(); ++e) {
      if ((*environments)[e].name == args.reference) options.reference = static_cast<int>(e);
    }
    if (options.reference < 0) return invalid_argument("--reference '" + args.reference + "' is not an environment of the run");
  }
  auto summary = summarize_stability(store, options);
  if (!summary) return summary.status();
  if (auto written = write_summary_and_report(*summary, args.out, data); !written.is_ok()) return written;
  const std::string path = args.out + "/summary.json";
  const std::string report_path = args.out + "/report.html";
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : (*summary)["environments"]) {
    rows.push_back({e["name"].get<std::string>(), fixed(100.0 * e["accuracy"].get<double>(), 2)});
  }
  std::cout << format_table({"environment", "top-1 %"}, rows);
  if (summary->contains("per_source")) {
    std::vector<std::vector<std::string>> sources;
    for (const auto& s : (*summary)["per_source"]) {
      sources.push_back({s["source"].get<std::string>(), std::to_string(s["environments"].size()),
                         fixed(100.0 * s["instability"].get<double>(), 2),
                         fixed(100.0 * s["instability_top" + std::to_string(args.top_k)].get<double>(), 2),
                         fixed(100.0 * s["accuracy_drop"]["mean"].get<double>(), 2),
                         fixed(100.0 * s["accuracy_drop"]["max"].get<double>(), 2)});
    }
    std::cout << format_table({"source", "environments", "instability %", "top-" + std::to_string(args.top_k) + " %",
                               "drop mean", "drop max"},
                              sources);
  }
  std::cout << "images " << (*summary)["images"] << ", instability " << fixed(100.0 * (*summary)["instability"].get<double>(), 2)
            << "%, top-" << args.top_k << " instability "
            << fixed(100.0 * (*summary)["instability_top" + std::to_string(args.top_k)].get<double>(), 2)
            << "%, accuracy drop vs " << (*summary)["reference"].get<std::string>() << ": mean "
            << fixed(100.0 * (*summary)["accuracy_drop"]["mean"].get<double>(), 2) << " max "
            << fixed(100.0 * (*summary)["accuracy_drop"]["max"].get<double>(), 2) << " points\n"
            << path << "\n" << report_path << "\n";
  return Status::ok();
}

// Environments from --experiment FILE, with --fleet in place of the file's fleet and --axis and
// --env added to its axes and environments.
Expected<std::vector<StabilityEnvironment>> gather_environments(const StabilityArgs& args, bool encoded_source) {
  StabilityExperiment experiment;
  if (!args.experiment_file.empty()) {
    auto from_file = read_experiment(args.experiment_file);
    if (!from_file) return from_file.status();
    experiment = std::move(*from_file);
  }
  if (!args.fleet.empty()) experiment.fleet = args.fleet;
  if (!args.vary.empty()) {
    auto part = parse_fleet_part(args.vary);
    if (!part) return invalid_argument("--vary: " + part.status().message());
    experiment.vary = *part;
  }
  for (const auto& [spec, shared] : {std::pair{&args.capture, &experiment.capture}, std::pair{&args.deployment, &experiment.deployment}}) {
    if (spec->empty()) continue;
    auto parsed = parse_environment(shared->name, *spec);
    if (!parsed) return parsed.status();
    *shared = std::move(*parsed);
  }
  if (args.repeats > 0) experiment.repeats = args.repeats;
  if (!args.common_isp.empty()) {
    auto isp = parse_common_isp(args.common_isp);
    if (!isp) return invalid_argument("--common-isp: " + isp.status().message());
    experiment.common_isp = *isp;
  }
  if (experiment.fleet.empty() && (experiment.vary != FleetPart::kAll || experiment.repeats > 1 || experiment.common_isp)) {
    return invalid_argument("--vary, --repeats and --common-isp apply to a fleet's devices: give --fleet");
  }
  experiment.axes.insert(experiment.axes.end(), args.axes.begin(), args.axes.end());
  for (const auto& item : args.envs) {
    auto environment = parse_environment(item);
    if (!environment) return environment.status();
    experiment.environments.push_back(std::move(*environment));
  }
  if (experiment.fleet.empty() && experiment.axes.empty() && experiment.environments.size() < 2) {
    return invalid_argument("give --fleet DIR, --axis NAME, --experiment FILE or at least two --env NAME=PIPELINE");
  }
  return experiment_environments(experiment, encoded_source);
}

// INT8's held-out calibration set: --calibration, else the official train split for a run on
// a named dataset's test split, else the dataset's items after --limit.
Expected<std::shared_ptr<const Dataset>> calibration_set(const StabilityArgs& args, const std::shared_ptr<const Dataset>& data) {
  if (!args.calibration.empty()) return open_dataset(args.calibration);
  auto official = open_official_splits(args.data);
  if (!official) return official.status();
  if (*official && (*official)->test->name() == data->name()) return (*official)->train;
  if (args.limit > 0 && args.limit < data->size()) return subset(data, items_after(args.limit, data->size()));
  return invalid_argument("INT8 environments calibrate on a held-out set: give --calibration DATA, or --limit N to "
                          "hold out the items after the first N");
}

// --shard, else what a Slurm array or Kubernetes indexed Job assigned, else the whole run.
Expected<Shard> chosen_shard(const StabilityArgs& args) {
  if (!args.shard.empty()) return parse_shard(args.shard);
  auto assigned = shard_from_environment(process_environment(), args.shard_count);
  if (!assigned) return assigned.status();
  return assigned->value_or(Shard{});
}

int run_run(const StabilityArgs& args) {
  auto shard = chosen_shard(args);
  if (!shard) return fail(shard.status());
  const int shard_index = shard->index, shard_count = shard->count;
  if (shard->from != "default" && shard->from != "--shard") {
    std::cout << "shard " << shard_index << "/" << shard_count << " (from " << shard->from << ")\n";
  }
  auto card = resolve_model(args.model);
  if (!card) return fail(card.status());
  auto data = open_dataset(args.data);
  if (!data) return fail(data.status());
  auto environments = gather_environments(args, (*data)->size() > 0 && static_cast<bool>((*data)->load_encoded(0)));
  if (!environments) return fail(environments.status());
  StabilityRunOptions options;
  if (std::any_of(environments->begin(), environments->end(), [](const StabilityEnvironment& e) {
        return is_int8(e.environment.inference.precision);
      })) {
    auto held_out = calibration_set(args, *data);
    if (!held_out) return fail(held_out.status());
    auto calibration = calibration_inputs(**held_out, card->input, args.calibration_size);
    if (!calibration) return fail(calibration.status());
    options.calibration = std::move(*calibration);
    std::cout << "INT8 calibration: " << std::min(args.calibration_size, (*held_out)->size()) << " inputs of "
              << (*held_out)->name() << "\n";
  }
  std::error_code error;
  std::filesystem::create_directories(args.out, error);
  if (error) return fail_retryable_or_not(io_error("cannot create '" + args.out + "': " + error.message()));
  const std::string store_path = args.out + (shard_count > 1 ? "/results-" + std::to_string(shard_index) + "-of-" +
                                                                   std::to_string(shard_count) + ".sqlite"
                                                             : "/results.sqlite");
  auto store = ResultsStore::open(store_path);
  if (!store) return fail_retryable_or_not(store.status());
  options.batch_size = args.batch;
  options.threads = args.threads;
  options.limit = args.limit;
  options.shard_index = shard_index;
  options.shard_count = shard_count;
  if (isatty(STDERR_FILENO)) {
    options.progress = [](std::size_t done, std::size_t total) {
      const int width = 40;
      const int filled = total ? static_cast<int>(width * done / total) : width;
      std::cerr << "\r[" << std::string(filled, '#') << std::string(width - filled, ' ') << "] " << done << "/" << total
                << (done == total ? "\n" : "") << std::flush;
    };
  }
  auto stats = run_stability(*card, **data, *environments, **store, options);
  if (!stats) return fail_retryable_or_not(stats.status());
  std::cout << "inputs " << stats->inputs << " x " << environments->size() << " environments: " << stats->evaluated
            << " answers computed, " << stats->already_recorded << " already recorded, " << stats->failures
            << " failed; pipeline stages run " << stats->stage_runs << " of " << stats->stage_runs_unshared
            << " (shared prefixes); inferences shared " << stats->inferences_shared << " (identical inputs)\n";
  for (const auto& [setting, engine] : stats->engines) {
    std::cout << "  " << (setting.empty() ? "default" : setting) << ": " << engine << "\n";
  }
  for (const auto& developer : stats->raw_developers) std::cout << "  raw developer: " << developer << "\n";
  if (shard_count > 1) {
    std::cout << store_path << " (merge the shards with: edgefleet stability merge --out " << args.out << " SHARDS...)\n";
    return 0;
  }
  if (Status s = write_summary(**store, args, data->get()); !s.is_ok()) return fail(s);
  return 0;
}

// The optional --data of merge and summary (for the report's class names and pictures).
Expected<std::shared_ptr<const Dataset>> optional_dataset(const StabilityArgs& args) {
  if (args.data.empty()) return std::shared_ptr<const Dataset>();
  return open_dataset(args.data);
}

// A shard store's place in its run, from its name (results-K-of-N.sqlite), or nullopt.
std::optional<Shard> shard_of_store(const std::string& path) {
  const std::string name = std::filesystem::path(path).filename().string();
  int k = 0, n = 0;
  char tail[16] = {};
  if (std::sscanf(name.c_str(), "results-%d-of-%d.%15s", &k, &n, tail) != 3 || std::string(tail) != "sqlite") return std::nullopt;
  if (n < 1 || k < 0 || k >= n) return std::nullopt;
  return Shard{k, n, path};
}

// Merges the shards there are (SHARDS, or OUT/results-*-of-*.sqlite) and says which of the
// run's shards are still missing; idempotent, so it can run again as more shards finish.
int run_merge(const StabilityArgs& args) {
  std::vector<std::string> shards = args.shards;
  if (shards.empty()) {
    std::error_code listing;
    for (const auto& entry : std::filesystem::directory_iterator(args.out, listing)) {
      if (shard_of_store(entry.path().string())) shards.push_back(entry.path().string());
    }
    std::sort(shards.begin(), shards.end());
    if (shards.empty()) return fail(not_found("no shard stores (results-K-of-N.sqlite) in '" + args.out + "'"));
  }
  std::set<int> present;
  std::vector<std::string> unfinished;
  int count = 0;
  for (const auto& path : shards) {
    const auto shard = shard_of_store(path);
    if (!shard) continue;  // a store named otherwise: merged, not counted
    if (count != 0 && shard->count != count) {
      return fail(invalid_argument("'" + path + "' is a shard of " + std::to_string(shard->count) + ", the others of " +
                                   std::to_string(count)));
    }
    count = shard->count;
    // A shard whose task was killed has a store with fewer answers than its inputs need.
    auto partial = ResultsStore::open(path);
    if (!partial) return fail_retryable_or_not(partial.status());
    auto inputs = (*partial)->inputs();
    auto environments = (*partial)->environments();
    auto recorded = (*partial)->recorded();
    if (!inputs || !environments || !recorded) return fail(corrupt("'" + path + "' is not a complete results store"));
    std::size_t expected = 0;
    for (std::size_t i = static_cast<std::size_t>(shard->index); i < inputs->size(); i += static_cast<std::size_t>(count)) {
      expected += environments->size();
    }
    if (recorded->size() >= expected) present.insert(shard->index);
    else unfinished.push_back(std::to_string(shard->index) + " (" + std::to_string(recorded->size()) + " of " + std::to_string(expected) + " answers)");
  }
  std::error_code error;
  std::filesystem::create_directories(args.out, error);
  auto store = ResultsStore::open(args.out + "/results.sqlite");
  if (!store) return fail_retryable_or_not(store.status());
  for (const auto& shard : shards) {
    if (Status s = (*store)->merge_from(shard); !s.is_ok()) return fail_retryable_or_not(s);
  }
  auto data = optional_dataset(args);
  if (!data) return fail(data.status());
  if (Status s = write_summary(**store, args, data->get()); !s.is_ok()) return fail(s);
  std::string missing, incomplete;
  for (int k = 0; k < count; ++k) {
    if (!present.count(k)) missing += (missing.empty() ? "" : ", ") + std::to_string(k);
  }
  for (const auto& u : unfinished) incomplete += (incomplete.empty() ? "" : ", ") + u;
  if (!missing.empty()) {
    std::cout << "merged " << present.size() << " complete shards of " << count << "; missing: " << missing
              << (incomplete.empty() ? "" : "; unfinished: " + incomplete)
              << " (the summary covers what is merged; run those shards again, then merge again)\n";
    return kExitRetryable;
  }
  if (count > 0) std::cout << "merged all " << count << " shards\n";
  return 0;
}

int run_summary(const StabilityArgs& args) {
  const std::string path = args.out + "/results.sqlite";
  if (!std::filesystem::exists(path)) return fail(not_found("no results store '" + path + "'"));
  auto store = ResultsStore::open(path);
  if (!store) return fail(store.status());
  auto data = optional_dataset(args);
  if (!data) return fail(data.status());
  if (Status s = write_summary(**store, args, data->get()); !s.is_ok()) return fail(s);
  return 0;
}

Expected<nlohmann::json> read_summary(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("no summary '" + path + "' (edgefleet stability summary --out DIR writes it)");
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) return corrupt("'" + path + "' is not JSON");
  return j;
}

// The release gate: exit 0 when no figure rose beyond the margin and the noise, 1 otherwise.
int run_check(const StabilityArgs& args) {
  auto baseline = read_summary(args.baseline);
  if (!baseline) return fail(baseline.status());
  auto current = read_summary(args.out + "/summary.json");
  if (!current) return fail(current.status());
  auto result = check_release(*baseline, *current, args.gate);
  if (!result) return fail(result.status());
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : result->figures) {
    rows.push_back({f.name, fixed(100 * f.baseline, 2) + "% of " + std::to_string(f.baseline_inputs),
                    fixed(100 * f.current, 2) + "% of " + std::to_string(f.current_inputs), fixed(100 * f.increase, 2),
                    fixed(100 * f.lower_bound, 2), f.failed ? "ROSE" : "ok"});
  }
  std::cout << format_table({"figure", "baseline", "this run", "increase (pts)", "lower bound (pts)", "verdict"}, rows);
  for (const auto& source : result->only_in_one) std::cout << "not compared (in one summary only): " << source << "\n";
  std::ofstream out(args.out + "/check.json");
  out << gate_result_to_json(*result, args.gate).dump(2) << "\n";
  if (!out) return fail(io_error("could not write '" + args.out + "/check.json'"));
  std::cout << (result->passed ? "gate passed" : "gate FAILED") << ": tolerated increase " << fixed(100 * args.gate.max_increase, 2)
            << " points beyond the " << fixed(100 * args.gate.confidence, 0) << "% one-sided bound\n";
  return result->passed ? 0 : kExitFailure;
}

// For the `--top` most unstable inputs of the run in OUT: between its reference environment
// and the first that disagrees, the smallest set of differences that flips the answer.
int run_explain(const StabilityArgs& args) {
  auto summary = read_summary(args.out + "/summary.json");
  if (!summary) return fail(summary.status());
  auto card = resolve_model(args.model);
  if (!card) return fail(card.status());
  auto data = open_dataset(args.data);
  if (!data) return fail(data.status());
  auto store = ResultsStore::open(args.out + "/results.sqlite");
  if (!store) return fail(store.status());
  auto stored = (*store)->environments();
  if (!stored) return fail(stored.status());
  std::map<std::string, StabilityEnvironment> environments;
  for (const auto& e : *stored) {
    auto env = parse_environment(e.name, e.spec);
    if (!env) return fail(env.status());
    environments.emplace(e.name, std::move(*env));
  }
  const std::string reference = summary->value("reference", std::string());
  if (!environments.count(reference)) return fail(corrupt("the summary's reference environment is not in the store"));
  std::map<std::string, std::size_t> index_of;
  for (std::size_t i = 0; i < (*data)->size(); ++i) index_of[(*data)->item_name(i)] = i;
  nlohmann::json out = nlohmann::json::array();
  std::size_t done = 0;
  for (const auto& item : (*summary)["most_unstable"]) {
    if (done >= args.explain_top) break;
    const std::string input = item["input"].get<std::string>();
    const auto at = index_of.find(input);
    if (at == index_of.end()) return fail(not_found("input '" + input + "' is not in " + args.data + " (the run's data?)"));
    const int reference_class = item["predictions"][reference]["class"].get<int>();
    std::string other;
    for (const auto& [name, p] : item["predictions"].items()) {
      if (p["class"].get<int>() != reference_class && p["class"].get<int>() >= 0) {
        other = name;
        break;
      }
    }
    if (other.empty()) continue;
    auto why = explain_flip(*card, **data, at->second, environments.at(reference), environments.at(other));
    if (!why) {
      std::cerr << "edgefleet: " << input << ": " << why.status().message() << "\n";
      continue;
    }
    ++done;
    std::cout << input << ": " << reference << " says " << why->from_top1 << ", " << other << " says " << why->to_top1
              << "; " << why->changes.size() << " differences, " << why->evaluated.size() << " environments tried; flips with:\n";
    for (int c : why->culprit) std::cout << "  " << why->changes[static_cast<std::size_t>(c)] << "\n";
    if (why->activations.parted_at >= 0) {
      const auto& layer = why->activations.layers[static_cast<std::size_t>(why->activations.parted_at)];
      std::cout << "  inside the model, the two inputs part at " << layer.layer << " (cosine " << fixed(layer.cosine, 4) << ")\n";
    }
    out.push_back(explanation_to_json(*why));
  }
  write_file_atomically(out.dump(2) + "\n", args.out + "/explain.json");
  (*summary)["explanations"] = out;
  if (auto written = write_summary_and_report(*summary, args.out, data->get()); !written.is_ok()) return fail(written);
  std::cout << args.out << "/explain.json\n" << args.out << "/report.html (the gallery links to the explanations)\n";
  return 0;
}

}  // namespace

Runner add_stability_command(CLI::App& app) {
  auto args = std::make_shared<StabilityArgs>();
  auto* command = app.add_subcommand("stability", "Instability lab: one model's answers across device pipelines");
  command->require_subcommand(1);
  auto* run = command->add_subcommand("run", "Run every input through every environment into OUT/results.sqlite (resumable)");
  run->add_option("--model", args->model, "Model card, or a built-in zoo model name")->required();
  run->add_option("--data", args->data, "Dataset: fashion-mnist[:train|:test] or an image folder")->required();
  run->add_option("--fleet", args->fleet, "Use every device of this fleet folder ('builtin' = the built-in span fleet, 'phones' = the instability paper's five phones)");
  run->add_option("--vary", args->vary, "The fleet devices' part to vary: all, capture (deployment shared: the paper's set-up) or deployment");
  run->add_option("--capture", args->capture, "The capture every device shares with --vary deployment (default: the source file)");
  run->add_option("--deployment", args->deployment, "The deployment every device shares with --vary capture, optionally ending in |infer:SETTING (default: decode, the card's preprocessing, fp32)");
  run->add_option("--common-isp", args->common_isp, "Develop every fleet device's raw with this ISP, e.g. camera:opencv,demosaic=ea,wb=grayworld (the paper's 9.2)");
  run->add_option("--repeats", args->repeats, "Sessions per fleet device (DEVICE/rK, other screen and noise seeds): per-device repeat instability")->check(CLI::Range(1, 100));
  run->add_option("--env", args->envs, "An environment NAME=SPEC: a pipeline, optionally ending in |infer:SETTING (repeatable)");
  run->add_option("--experiment,--envs", args->experiment_file, "An experiment file: {\"fleet\", \"axes\": [...], \"environments\": [{name, spec}...]}");
  run->add_option("--axis", args->axes, "Vary one source at a time (repeatable): " + [] {
    std::string names;
    for (const auto& n : stability_axis_names()) names += (names.empty() ? "" : ", ") + n;
    return names;
  }());
  run->add_option("--calibration", args->calibration, "Held-out dataset INT8 environments calibrate on");
  run->add_option("--calibration-size", args->calibration_size, "Calibration inputs")->capture_default_str();
  run->add_option("--out", args->out, "Run folder")->required();
  run->add_option("--shard", args->shard,
                  "Evaluate the inputs i with i % n == k: k/n (default: from a Slurm array or Kubernetes indexed Job, else 0/1)");
  run->add_option("--shard-count", args->shard_count,
                  "Shards of a Slurm array or Kubernetes indexed Job (the array index or completion index is the shard)")
      ->check(CLI::Range(1, 1000000));
  run->add_option("--batch", args->batch, "Inputs per batch")->capture_default_str();
  run->add_option("--threads", args->threads, "Pipeline threads (0 = one per core)")->capture_default_str();
  run->add_option("--limit", args->limit, "First N inputs only (0 = all)")->capture_default_str();
  run->add_option("--top-k", args->top_k, "k of the top-k figures")->capture_default_str();
  run->add_option("--reference", args->reference, "Environment accuracy drops are measured from (default: the first)");
  auto* merge = command->add_subcommand("merge", "Merge shard stores into OUT/results.sqlite and summarise; says which are missing");
  merge->add_option("--out", args->out, "Run folder")->required();
  merge->add_option("shards", args->shards, "Shard stores (default: OUT/results-*-of-*.sqlite)")->check(CLI::ExistingFile);
  merge->add_option("--top-k", args->top_k, "k of the top-k figures")->capture_default_str();
  merge->add_option("--reference", args->reference, "Reference environment");
  merge->add_option("--data", args->data, "The run's dataset, for the report's class names and pictures");
  auto* summary = command->add_subcommand("summary", "Write OUT/summary.json and OUT/report.html from OUT/results.sqlite");
  summary->add_option("--out", args->out, "Run folder")->required();
  summary->add_option("--top-k", args->top_k, "k of the top-k figures")->capture_default_str();
  summary->add_option("--reference", args->reference, "Reference environment");
  summary->add_option("--data", args->data, "The run's dataset, for the report's class names and pictures");
  auto* check = command->add_subcommand("check", "Release gate: exit 1 when OUT's instability rose over the baseline's beyond noise");
  check->add_option("--baseline", args->baseline, "The baseline run's summary.json")->required();
  check->add_option("--out", args->out, "The new run's folder (its summary.json)")->required();
  check->add_option("--max-increase", args->gate.max_increase, "Tolerated rise, a share of inputs (0.01 = 1 point)")
      ->capture_default_str()->check(CLI::Range(0.0, 0.999));
  check->add_option("--confidence", args->gate.confidence, "Of the one-sided bound on the rise")
      ->capture_default_str()->check(CLI::Range(0.5, 0.9999));
  auto* explain = command->add_subcommand("explain", "Why the most unstable inputs of a run flip: the smallest set of stage changes");
  explain->add_option("--out", args->out, "The run's folder (summary.json, results.sqlite); writes explain.json")->required();
  explain->add_option("--model", args->model, "The run's model")->required();
  explain->add_option("--data", args->data, "The run's dataset")->required();
  explain->add_option("--top", args->explain_top, "How many of the most unstable inputs")->capture_default_str()
      ->check(CLI::Range(1, 20));
  return [args, run, merge, summary, check, explain] {
    if (explain->parsed()) return run_explain(*args);
    if (check->parsed()) return run_check(*args);
    if (run->parsed()) return run_run(*args);
    if (merge->parsed()) return run_merge(*args);
    if (summary->parsed()) return run_summary(*args);
    return 2;
  };
}

}  // namespace edgefleet::cli
