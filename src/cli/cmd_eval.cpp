// edgefleet eval --model M --data D [--json]
#include <iostream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "cli/cli_common.h"
#include "edgefleet/evaluation.h"

namespace edgefleet::cli {
namespace {

struct EvalArgs {
  std::string model;
  std::string data = "fashion-mnist";
  std::string labels;
  int batch = 32;
  int threads = 0;
  std::size_t limit = 0;
  bool json = false;
  bool record = false;
};

void print_report(const EvalReport& report, const Dataset& dataset) {
  std::cout << "model " << report.model << " (" << report.engine << ") on " << report.dataset << "\n";
  std::cout << "images " << report.images << "  top1 " << fixed(100 * report.top1, 2) << "%  top5 "
            << fixed(100 * report.top5, 2) << "%  " << fixed(report.images_per_second, 1) << " images/s end to end, "
            << fixed(report.inference_images_per_second, 1) << " images/s inference\n";
  if (report.per_class.size() <= 20) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : report.per_class) {
      rows.push_back({c.name, std::to_string(c.images), fixed(100.0 * c.correct / c.images, 2)});
    }
    std::cout << "\n" << format_table({"class", "images", "top1 %"}, rows);
  }
  if (!report.confusions.empty()) {
    std::vector<std::vector<std::string>> rows;
    const auto& names = dataset.classes().names;
    auto name = [&](int c) { return c < static_cast<int>(names.size()) ? names[c] : std::to_string(c); };
    for (const auto& c : report.confusions) rows.push_back({name(c.truth), name(c.predicted), std::to_string(c.count)});
    std::cout << "\nmost frequent confusions\n" << format_table({"truth", "predicted as", "count"}, rows);
  }
  for (const auto& s : report.skipped) std::cout << "skipped " << s.item << ": " << s.reason << "\n";
}

int run(const EvalArgs& args) {
  auto card = resolve_model(args.model);
  if (!card) return fail(card.status());
  auto model = load_classifier(*card, {true, args.threads});
  if (!model) return fail(model.status());
  auto dataset = open_dataset(args.data, {args.labels});
  if (!dataset) return fail(dataset.status());
  EvalOptions options;
  options.batch_size = args.batch;
  options.limit = args.limit;
  const bool show_progress = !args.json && isatty(STDERR_FILENO);
  if (show_progress) {
    options.on_progress = [](std::size_t done, std::size_t total) {
      std::cerr << "\r" << done << "/" << total << std::flush;
      if (done == total) std::cerr << "\r\033[K";
    };
  }
  auto report = evaluate(**model, **dataset, options);
  if (!report) return fail(report.status());
  for (const auto& s : report->skipped) std::cerr << "edgefleet: skipped " << s.item << ": " << s.reason << "\n";
  if (args.json) {
    std::cout << eval_report_to_json(*report).dump() << "\n";
  } else {
    print_report(*report, **dataset);
  }
  if (report->images == 0) return fail(invalid_argument("no image of '" + args.data + "' could be evaluated"));
  if (args.record) {
    if (card->raw.value("file", "") != card->file) {
      return fail(invalid_argument("--record: card '" + card->card_path + "' describes '" + card->raw.value("file", "") +
                                   "', not '" + card->file + "'; give the model its own card"));
    }
    ModelCard updated = *card;
    updated.accuracy = AccuracyRecord{report->dataset, report->images, report->top1, report->top5};
    const Status written = write_card(updated, card->card_path);
    if (!written.is_ok()) return fail(written);
    if (!args.json) std::cout << "recorded the accuracy in " << card->card_path << "\n";
  }
  return 0;
}

}  // namespace

Runner add_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  auto* eval = app.add_subcommand("eval", "Accuracy (top-1/top-5, per class, confusions) and throughput of a model on a dataset");
  eval->add_option("--model", args->model, "Zoo name, card (.json) or model file (.pt/.onnx) with its card beside it")->required();
  eval->add_option("--data", args->data, "fashion-mnist[:train|:test] or an ImageFolder path")->capture_default_str();
  eval->add_option("--labels", args->labels, "Class order file for an ImageFolder (overrides its labels.txt)");
  eval->add_option("--batch", args->batch, "Batch size")->check(CLI::PositiveNumber)->capture_default_str();
  eval->add_option("--threads", args->threads, "Inference threads (0 = one per core)")->check(CLI::NonNegativeNumber);
  eval->add_option("--limit", args->limit, "Evaluate only the first N images");
  eval->add_flag("--json", args->json, "Print one JSON object");
  eval->add_flag("--record", args->record, "Write the measured accuracy into the model's card");
  return [args] { return run(*args); };
}

}  // namespace edgefleet::cli
