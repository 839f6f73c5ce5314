// edgefleet profile --repository DIR --out DIR
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "edgefleet/profiler.h"

namespace edgefleet::cli {
namespace {

struct ProfileArgs {
  std::string repository;
  std::string out = ".";
  ProfileOptions options;
};

int run(ProfileArgs& args) {
  args.options.on_variant = [](const std::string& name, double mean, double std) {
    std::cout << name << ": " << fixed(mean, 3) << " +- " << fixed(std, 3) << " ms" << std::endl;
  };
  auto zoos = profile_repository(args.repository, args.options);
  if (!zoos) return fail(zoos.status());
  std::filesystem::create_directories(args.out);
  for (const auto& zoo : *zoos) {
    nlohmann::json j = zoo_profile_to_json(zoo);
    j["source"] = "edgefleet profile --repository " + args.repository + " (batch " + std::to_string(args.options.batch) +
                  ", " + std::to_string(args.options.runs) + " runs after " + std::to_string(args.options.warmup) + " warm-up)";
    const std::string path = args.out + "/" + zoo.name + ".zoo.json";
    std::ofstream out(path);
    out << j.dump(1) << "\n";
    if (!out) return fail(io_error("cannot write '" + path + "'"));
    std::cout << "wrote " << path << " (" << zoo.variants.size() << " variants)\n";
  }
  return 0;
}

}  // namespace

Runner add_profile_command(CLI::App& app) {
  auto args = std::make_shared<ProfileArgs>();
  auto* profile = app.add_subcommand("profile", "Measure latency mean/std of every model in a repository; write zoo profiles");
  profile->add_option("--repository", args->repository, "Folder of model cards (searched recursively)")->required();
  profile->add_option("--out", args->out, "Folder for <task>.zoo.json files")->capture_default_str();
  profile->add_option("--runs", args->options.runs, "Timed runs per model")->check(CLI::Range(2, 100000))->capture_default_str();
  profile->add_option("--warmup", args->options.warmup, "Untimed runs first")->check(CLI::NonNegativeNumber)->capture_default_str();
  profile->add_option("--batch", args->options.batch, "Batch size")->check(CLI::PositiveNumber)->capture_default_str();
  profile->add_option("--threads", args->options.threads, "Inference threads (0 = one per core)")->check(CLI::NonNegativeNumber);
  return [args] { return run(*args); };
}

}  // namespace edgefleet::cli
