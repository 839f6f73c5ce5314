// edgefleet stability run|merge|summary
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "edgefleet/dataset.h"
#include "edgefleet/model_card.h"
#include "edgefleet/stability_run.h"
#include "edgefleet/stability_summary.h"

namespace edgefleet::cli {
namespace {

struct StabilityArgs {
  std::string model;
  std::string data;
  std::string fleet;
  std::vector<std::string> envs;
  std::string out;
  std::string shard = "0/1";
  std::vector<std::string> shards;
  int batch = 32;
  int threads = 0;
  std::size_t limit = 0;
  int top_k = 3;
  std::string reference;
};

Status write_summary(const ResultsStore& store, const StabilityArgs& args) {
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
  const std::string path = args.out + "/summary.json";
  std::ofstream out(path);
  out << summary->dump(1) << "\n";
  if (!out) return io_error("cannot write '" + path + "'");
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : (*summary)["environments"]) {
    rows.push_back({e["name"].get<std::string>(), fixed(100.0 * e["accuracy"].get<double>(), 2)});
  }
  std::cout << format_table({"environment", "top-1 %"}, rows);
  std::cout << "images " << (*summary)["images"] << ", instability " << fixed(100.0 * (*summary)["instability"].get<double>(), 2)
            << "%, top-" << args.top_k << " instability "
            << fixed(100.0 * (*summary)["instability_top" + std::to_string(args.top_k)].get<double>(), 2)
            << "%, accuracy drop vs " << (*summary)["reference"].get<std::string>() << ": mean "
            << fixed(100.0 * (*summary)["accuracy_drop"]["mean"].get<double>(), 2) << " max "
            << fixed(100.0 * (*summary)["accuracy_drop"]["max"].get<double>(), 2) << " points\n"
            << path << "\n";
  return Status::ok();
}

int run_run(const StabilityArgs& args) {
  int shard_index = 0, shard_count = 1;
  if (std::sscanf(args.shard.c_str(), "%d/%d", &shard_index, &shard_count) != 2) {
    return fail(invalid_argument("--shard '" + args.shard + "' is not i/n"));
  }
  auto card = resolve_model(args.model);
  if (!card) return fail(card.status());
  auto data = open_dataset(args.data);
  if (!data) return fail(data.status());
  std::vector<StabilityEnvironment> environments;
  if (!args.fleet.empty()) {
    auto fleet = read_fleet(args.fleet == "builtin" ? builtin_fleet_dir() : args.fleet);
    if (!fleet) return fail(fleet.status());
    auto from_fleet = environments_from_fleet(*fleet);
    if (!from_fleet) return fail(from_fleet.status());
    environments = std::move(*from_fleet);
  }
  for (const auto& item : args.envs) {
    auto environment = parse_environment(item);
    if (!environment) return fail(environment.status());
    environments.push_back(std::move(*environment));
  }
  if (environments.size() < 2) return fail(invalid_argument("give --fleet DIR or at least two --env NAME=PIPELINE"));
  auto classifier = load_classifier(*card);
  if (!classifier) return fail(classifier.status());
  std::error_code error;
  std::filesystem::create_directories(args.out, error);
  if (error) return fail(io_error("cannot create '" + args.out + "': " + error.message()));
  const std::string store_path = args.out + (shard_count > 1 ? "/results-" + std::to_string(shard_index) + "-of-" +
                                                                   std::to_string(shard_count) + ".sqlite"
                                                             : "/results.sqlite");
  auto store = ResultsStore::open(store_path);
  if (!store) return fail(store.status());
  StabilityRunOptions options;
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
  auto stats = run_stability(**classifier, **data, environments, **store, options);
  if (!stats) return fail(stats.status());
  std::cout << "inputs " << stats->inputs << " x " << environments.size() << " environments: " << stats->evaluated
            << " answers computed, " << stats->already_recorded << " already recorded, " << stats->failures
            << " failed; pipeline stages run " << stats->stage_runs << " of " << stats->stage_runs_unshared
            << " (shared prefixes)\n";
  if (shard_count > 1) {
    std::cout << store_path << " (merge the shards with: edgefleet stability merge --out " << args.out << " SHARDS...)\n";
    return 0;
  }
  if (Status s = write_summary(**store, args); !s.is_ok()) return fail(s);
  return 0;
}

int run_merge(const StabilityArgs& args) {
  std::error_code error;
  std::filesystem::create_directories(args.out, error);
  auto store = ResultsStore::open(args.out + "/results.sqlite");
  if (!store) return fail(store.status());
  for (const auto& shard : args.shards) {
    if (Status s = (*store)->merge_from(shard); !s.is_ok()) return fail(s);
  }
  if (Status s = write_summary(**store, args); !s.is_ok()) return fail(s);
  return 0;
}

int run_summary(const StabilityArgs& args) {
  const std::string path = args.out + "/results.sqlite";
  if (!std::filesystem::exists(path)) return fail(not_found("no results store '" + path + "'"));
  auto store = ResultsStore::open(path);
  if (!store) return fail(store.status());
  if (Status s = write_summary(**store, args); !s.is_ok()) return fail(s);
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
  run->add_option("--fleet", args->fleet, "Use every device of this fleet folder ('builtin' = the built-in fleet)");
  run->add_option("--env", args->envs, "An environment NAME=PIPELINE (repeatable)");
  run->add_option("--out", args->out, "Run folder")->required();
  run->add_option("--shard", args->shard, "Evaluate the inputs i with i % n == k: k/n")->capture_default_str();
  run->add_option("--batch", args->batch, "Inputs per batch")->capture_default_str();
  run->add_option("--threads", args->threads, "Pipeline threads (0 = one per core)")->capture_default_str();
  run->add_option("--limit", args->limit, "First N inputs only (0 = all)")->capture_default_str();
  run->add_option("--top-k", args->top_k, "k of the top-k figures")->capture_default_str();
  run->add_option("--reference", args->reference, "Environment accuracy drops are measured from (default: the first)");
  auto* merge = command->add_subcommand("merge", "Merge shard stores into OUT/results.sqlite and summarise");
  merge->add_option("--out", args->out, "Run folder")->required();
  merge->add_option("shards", args->shards, "Shard stores")->required()->check(CLI::ExistingFile);
  merge->add_option("--top-k", args->top_k, "k of the top-k figures")->capture_default_str();
  merge->add_option("--reference", args->reference, "Reference environment");
  auto* summary = command->add_subcommand("summary", "Write OUT/summary.json from OUT/results.sqlite");
  summary->add_option("--out", args->out, "Run folder")->required();
  summary->add_option("--top-k", args->top_k, "k of the top-k figures")->capture_default_str();
  summary->add_option("--reference", args->reference, "Reference environment");
  return [args, run, merge, summary] {
    if (run->parsed()) return run_run(*args);
    if (merge->parsed()) return run_merge(*args);
    if (summary->parsed()) return run_summary(*args);
    return 2;
  };
}

}  // namespace edgefleet::cli
