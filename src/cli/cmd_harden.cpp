// edgefleet harden: stability training with a grid search, measured on held-out devices.
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/cli_common.h"
#include "edgefleet/hardening.h"
#include "edgefleet/model_card.h"
#include "edgefleet/port.h"
#include "edgefleet/stability_experiment.h"

namespace edgefleet::cli {
namespace {
namespace fs = std::filesystem;

struct HardenArgs {
  std::string model;
  std::string data;
  std::string test_data;
  std::string out;
  std::string work;
  std::string fleet = "builtin";
  std::string vary = "all";
  std::vector<std::string> holdout;
  std::vector<std::string> noises{"all"};
  std::vector<std::string> losses{"kl", "embedding"};
  std::vector<double> alphas;
  std::vector<double> embedding_alphas;
  std::vector<double> sigma2s;
  std::vector<double> strengths;
  std::vector<int> per_class;
  FineTuneBudget budget;
  std::string optimizer = "sgd";
  std::size_t validation_images = 1000;
  std::size_t test_images = 2000;
  double max_accuracy_drop = 1.0;  // points
  int threads = 0;
};

// The fleet split in two: --holdout names the held-out devices; by default every other device
// in name order, starting with the second, is held out. With --vary capture every device's
// capture ends in one shared deployment (the paper's set-up).
Status split_fleet(const HardenArgs& args, HardenOptions& options) {
  StabilityExperiment experiment;
  experiment.fleet = args.fleet;
  auto part = parse_fleet_part(args.vary);
  if (!part) return invalid_argument("--vary: " + part.status().message());
  experiment.vary = *part;
  auto environments = experiment_environments(experiment, /*encoded_source=*/true);
  if (!environments) return environments.status();
  std::sort(environments->begin(), environments->end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const auto& name : args.holdout) {
    if (std::none_of(environments->begin(), environments->end(), [&](const auto& e) { return e.name == name; })) {
      return not_found("--holdout '" + name + "' is not a device of the fleet");
    }
  }
  for (std::size_t i = 0; i < environments->size(); ++i) {
    const auto& e = (*environments)[i];
    const bool held = args.holdout.empty() ? i % 2 == 1 : std::count(args.holdout.begin(), args.holdout.end(), e.name) > 0;
    (held ? options.heldout_environments : options.train_environments).push_back(e);
  }
  return Status::ok();
}

Status fill_grid(const HardenArgs& args, HardenGrid& grid) {
  if (!(args.noises.size() == 1 && args.noises[0] == "all")) {
    grid.noises.clear();
    for (const auto& name : args.noises) {
      auto kind = parse_noise_kind(name);
      if (!kind) return kind.status();
      grid.noises.push_back(*kind);
    }
  }
  grid.losses.clear();
  for (const auto& name : args.losses) {
    auto loss = parse_stability_loss(name);
    if (!loss) return loss.status();
    grid.losses.push_back(*loss);
  }
  if (!args.alphas.empty()) grid.kl_alphas = grid.embedding_alphas = args.alphas;
  if (!args.embedding_alphas.empty()) grid.embedding_alphas = args.embedding_alphas;
  if (!args.sigma2s.empty()) grid.sigma2s = args.sigma2s;
  if (!args.strengths.empty()) grid.strengths = args.strengths;
  if (!args.per_class.empty()) grid.per_class = args.per_class;
  return grid_settings(grid).status();
}

int run_harden(const HardenArgs& args) {
  auto card = resolve_model(args.model);
  if (!card) return fail(card.status());
  HardenOptions options;
  if (Status s = fill_grid(args, options.grid); !s.is_ok()) return fail(s);
  if (Status s = split_fleet(args, options); !s.is_ok()) return fail(s);
  if (!(args.max_accuracy_drop >= 0)) return fail(invalid_argument("--max-accuracy-drop must be >= 0 points"));
  auto data = hardening_splits(args.data, args.test_data);
  if (!data) return fail(data.status());
  options.budget = args.budget;
  options.budget.optimizer = parse_finetune_optimizer(args.optimizer).value();  // checked by the parser
  options.validation_images = args.validation_images;
  options.test_images = args.test_images;
  options.max_accuracy_drop = args.max_accuracy_drop / 100;
  options.threads = args.threads;
  options.out_model = args.out;
  fs::path out = args.out;
  if (out.extension() == ".pt") out.replace_extension();
  options.work_dir = args.work.empty() ? out.string() + ".hardening" : args.work;
  options.log = [](const std::string& line) { std::cout << line << std::endl; };

  auto print_names = [](const char* what, const std::vector<StabilityEnvironment>& environments) {
    std::cout << what;
    for (const auto& e : environments) std::cout << " " << e.name;
    std::cout << "\n";
  };
  print_names("trained against:", options.train_environments);
  print_names("held out:       ", options.heldout_environments);
  auto result = harden_model(*card, *data, options);
  if (!result) return fail(result.status());
  if (Status s = write_hardening_report(*result, options.work_dir); !s.is_ok()) return fail(s);
  std::cout << "\n" << hardening_table_markdown(*result);
  for (const auto& note : result->notes) std::cout << "note: " << note << "\n";
  std::cout << result->card.card_path << "\n" << options.work_dir << "/report.html\n";
  return 0;
}

}  // namespace

Runner add_harden_command(CLI::App& app) {
  auto args = std::make_shared<HardenArgs>();
  auto* command = app.add_subcommand("harden", "Stability training: fine-tune a model to answer alike on every device");
  command->add_option("--model", args->model, "Model card, or a built-in zoo model name")->required();
  command->add_option("--data", args->data,
                      "fashion-mnist (train/test splits) or an image folder (split 2:1:2 into train/validation/test)")
      ->required();
  command->add_option("--test-data", args->test_data,
                      "An image folder measured on alone (e.g. imagenette/val); --data then only trains (4/5) and validates (1/5)");
  command->add_option("--out", args->out, "The hardened model (.pt; its card is written beside it)")->required();
  command->add_option("--work", args->work, "Caches and finished candidates (default: OUT.hardening); a rerun resumes");
  command->add_option("--fleet", args->fleet, "Fleet folder, 'builtin' or 'phones'")->capture_default_str();
  command->add_option("--vary", args->vary,
                      "The devices' part to vary: all, or capture (one shared deployment: the paper's set-up)")
      ->capture_default_str();
  command->add_option("--holdout", args->holdout, "Devices never trained on, measured after (default: every other by name)")
      ->delimiter(',');
  command->add_option("--noise", args->noises, "none|gaussian|distortion|paired|subsample|mixed, or all")
      ->delimiter(',')
      ->capture_default_str();
  command->add_option("--loss", args->losses, "Stability losses: kl, embedding")->delimiter(',')->capture_default_str();
  command->add_option("--alpha", args->alphas, "Stability-loss weights (default: kl 0.3,1,3; embedding 0.01,0.1,1)")
      ->delimiter(',');
  command->add_option("--embedding-alpha", args->embedding_alphas,
                      "The embedding loss's weights when they differ from --alpha (its distances are on another scale)")
      ->delimiter(',');
  command->add_option("--sigma2", args->sigma2s, "Gaussian noise variances, pixels in [0,1] (default 0.01,0.04)")->delimiter(',');
  command->add_option("--strength", args->strengths, "Distortion strengths in (0,1] (default 0.5,1)")->delimiter(',');
  command->add_option("--per-class", args->per_class, "Subsample: pictures per class from the other devices (default 10)")
      ->delimiter(',');
  command->add_option("--epochs", args->budget.epochs, "Fine-tuning epochs")->capture_default_str();
  command->add_option("--batch", args->budget.batch_size, "Batch size")->capture_default_str();
  command->add_option("--learning-rate", args->budget.learning_rate, "Learning rate (cosine to 0)")->capture_default_str();
  command->add_option("--optimizer", args->optimizer,
                      "sgd (Nesterov momentum 0.9) or adamw (no weight decay; a step that does not grow with the "
                      "filter scales a converted model folds into its batch norms)")
      ->check(CLI::IsMember(finetune_optimizer_names()))
      ->capture_default_str();
  command->add_option("--train-images", args->budget.train_images, "Fine-tuning images")->capture_default_str();
  command->add_option("--validation-images", args->validation_images, "Validation images")->capture_default_str();
  command->add_option("--test-images", args->test_images, "Test images")->capture_default_str();
  command->add_option("--seed", args->budget.seed, "Seed")->capture_default_str();
  command->add_flag("--frozen-batch-norm", args->budget.frozen_batch_norm,
                    "Keep batch norms' running statistics while fine-tuning (a pretrained model on a few classes)");
  command->add_flag("--distill", args->budget.distill,
                    "Task loss: KL from the base model's answer on the clean picture instead of cross entropy with "
                    "the label (fine-tuning on a few classes does not specialise the model)");
  command->add_option("--max-accuracy-drop", args->max_accuracy_drop,
                      "Validation top-1 points the chosen setting may lose against the base model")
      ->capture_default_str();
  command->add_option("--threads", args->threads, "Threads (0 = one per core)")->capture_default_str();
  return [args] { return run_harden(*args); };
}

}  // namespace edgefleet::cli
