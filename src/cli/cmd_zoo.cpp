// edgefleet zoo list|train|eval|show
#include <iostream>

#include "cli/cli_common.h"
#include "edgefleet/classifier.h"
#include "edgefleet/evaluation.h"
#include "edgefleet/latency.h"
#include "edgefleet/zoo.h"

namespace edgefleet::cli {
namespace {

struct ZooArgs {
  std::vector<std::string> only;
  std::string out;
  int threads = 0;
  int epochs = 0;
  bool measure = false;
  bool markdown = false;
  std::string show_name;
  std::string data = "fashion-mnist";
  std::size_t limit = 0;
  bool count = false;
};

std::vector<ZooEntry> selected(const std::vector<std::string>& only) {
  auto zoo = builtin_zoo();
  if (only.empty()) return zoo;
  std::vector<ZooEntry> picked;
  for (const auto& name : only) {
    auto it = std::find_if(zoo.begin(), zoo.end(), [&](const ZooEntry& e) { return e.name == name; });
    if (it == zoo.end()) throw Error(not_found("'" + name + "' is not a built-in zoo model (see `edgefleet zoo list`)"));
    picked.push_back(*it);
  }
  return picked;
}

int run_list(const ZooArgs& args) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& entry : builtin_zoo()) {
    auto card = resolve_model(entry.name);
    if (!card) {
      std::vector<std::string> row(args.measure ? 6 : 4, "-");
      row[0] = entry.name;
      row.push_back("not trained: " + card.status().message());
      rows.push_back(row);
      continue;
    }
    std::vector<std::string> row = {entry.name, human_count(static_cast<double>(card->params)),
                                    human_count(static_cast<double>(card->macs)),
                                    card->accuracy ? fixed(100 * card->accuracy->top1, 2) : "-"};
    if (args.measure) {
      auto model = load_classifier(*card, {true, args.threads}).value();
      const auto b1 = measure_latency(*model, 1).value();
      const auto b32 = measure_latency(*model, 32).value();
      row.push_back(fixed(b1.median_ms, 3));
      row.push_back(fixed(b32.median_ms / 32.0, 3));
    }
    row.push_back(entry.description);
    rows.push_back(row);
  }
  std::vector<std::string> header = {"model", "params", "MACs", "top1 %"};
  if (args.measure) {
    header.push_back("ms/img b1");
    header.push_back("ms/img b32");
  }
  header.push_back("architecture");
  std::cout << (args.markdown ? format_markdown_table(header, rows) : format_table(header, rows));
  return 0;
}

int run_train(const ZooArgs& args) {
  TrainOptions options;
  options.out_dir = args.out.empty() ? builtin_zoo_dir() : args.out;
  options.threads = args.threads;
  options.epochs_override = args.epochs;
  options.on_epoch = [](const TrainProgress& p) {
    std::cout << p.model << " epoch " << p.epoch << "/" << p.epochs << "  loss " << fixed(p.train_loss, 4) << "  test top1 "
              << fixed(100 * p.test_top1, 2) << "%  (" << fixed(p.seconds, 1) << " s)" << std::endl;
  };
  for (const auto& entry : selected(args.only)) {
    auto card = train_zoo_model(entry, options);
    if (!card) return fail(card.status());
    std::cout << entry.name << ": top1 " << fixed(100 * card->accuracy->top1, 2) << "%, " << human_count(card->macs)
              << " MACs, " << human_count(card->params) << " params -> " << card->card_path << std::endl;
  }
  return 0;
}

// Evaluates every zoo model on one dataset: the demo's main table.
int run_eval(const ZooArgs& args) {
  auto dataset = open_dataset(args.data);
  if (!dataset) return fail(dataset.status());
  std::vector<std::vector<std::string>> rows;
  for (const auto& entry : selected(args.only)) {
    auto card = resolve_model(entry.name);
    if (!card) return fail(card.status());
    auto model = load_classifier(*card, {true, args.threads});
    if (!model) return fail(model.status());
    EvalOptions options;
    options.limit = args.limit;
    auto report = evaluate(**model, **dataset, options);
    if (!report) return fail(report.status());
    const std::string card_top1 = card->accuracy ? fixed(100 * card->accuracy->top1, 2) : "-";
    rows.push_back({entry.name, human_count(static_cast<double>(card->params)), human_count(static_cast<double>(card->macs)),
                    std::to_string(report->images), fixed(100 * report->top1, 2), fixed(100 * report->top5, 2), card_top1,
                    fixed(report->images_per_second, 0)});
  }
  std::cout << "built-in zoo on " << (*dataset)->name() << "\n"
            << format_table({"model", "params", "MACs", "images", "top1 %", "top5 %", "card top1 %", "images/s"}, rows);
  return 0;
}

int run_show(const ZooArgs& args) {
  auto card = resolve_model(args.show_name);
  if (!card) return fail(card.status());
  if (!args.count) {
    std::cout << card_to_json(*card).dump(2) << "\n";
    return 0;
  }
  auto model = load_classifier(*card, {true, args.threads});
  if (!model) return fail(model.status());
  auto cost = (*model)->cost();
  if (!cost) return fail(cost.status());
  std::cout << format_table({"model", "engine", "params (counted)", "params (card)", "MACs (counted)", "MACs (card)"},
                            {{card->name, (*model)->engine(), std::to_string(cost->params), std::to_string(card->params),
                              std::to_string(cost->macs), std::to_string(card->macs)}});
  return 0;
}

}  // namespace

Runner add_zoo_command(CLI::App& app) {
  auto args = std::make_shared<ZooArgs>();
  auto* zoo = app.add_subcommand("zoo", "The built-in Fashion-MNIST zoo: list, train, eval, show");
  zoo->require_subcommand(1);
  auto* list = zoo->add_subcommand("list", "Table of the zoo: params, MACs, accuracy (and latency with --measure)");
  list->add_flag("--measure", args->measure, "Measure latency per image at batch 1 and 32 on this machine");
  list->add_flag("--markdown", args->markdown, "Print a Markdown table");
  list->add_option("--threads", args->threads, "Inference threads (0 = one per core)")->check(CLI::NonNegativeNumber);
  auto* train = zoo->add_subcommand("train", "Train the zoo from scratch (seeded, resumable) and write weights + cards");
  train->add_option("--only", args->only, "Train only these models");
  train->add_option("--out", args->out, "Output folder (default: the built-in zoo folder)");
  train->add_option("--threads", args->threads, "Training threads (0 = one per core)")->check(CLI::NonNegativeNumber);
  train->add_option("--epochs", args->epochs, "Override every recipe's epoch count")->check(CLI::PositiveNumber);
  auto* eval = zoo->add_subcommand("eval", "Evaluate every zoo model on a dataset and print one table");
  eval->add_option("--data", args->data, "fashion-mnist[:train|:test] or an ImageFolder path")->capture_default_str();
  eval->add_option("--only", args->only, "Evaluate only these models");
  eval->add_option("--limit", args->limit, "Evaluate only the first N images");
  eval->add_option("--threads", args->threads, "Inference threads (0 = one per core)")->check(CLI::NonNegativeNumber);
  auto* show = zoo->add_subcommand("show", "Print a model's card");
  show->add_option("model", args->show_name, "Zoo name, card or model file")->required();
  show->add_flag("--count", args->count, "Count params and MACs from the model itself and compare with the card");
  return [args, list, train, eval, show]() {
    if (eval->parsed()) return run_eval(*args);
    if (list->parsed()) return run_list(*args);
    if (train->parsed()) return run_train(*args);
    if (show->parsed()) return run_show(*args);
    return 2;
  };
}

}  // namespace edgefleet::cli
