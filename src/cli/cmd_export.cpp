// edgefleet export: an ONNX copy of a TorchScript classifier (what phones and Raspberry Pis
// run), checked through OpenCV DNN against libtorch's logits.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "edgefleet/onnx_export.h"

namespace edgefleet::cli {
namespace {

struct ExportArgs {
  std::string model;
  std::string out;
  OnnxExportOptions options;
  bool json = false;
};

int run(const ExportArgs& args) {
  auto card = resolve_model(args.model);
  if (!card) return fail(card.status());
  std::string out = args.out;
  if (out.empty()) out = (std::filesystem::path(card->model_path()).parent_path() / (std::filesystem::path(card->file).stem().string() + ".onnx")).string();
  auto exported = export_onnx(*card, out, args.options);
  if (!exported) return fail(exported.status());
  const OnnxExport& e = *exported;
  if (args.json) {
    std::cout << nlohmann::json{{"model", card->name},
                                {"onnx", out},
                                {"card", e.card_path},
                                {"opset", kOnnxOpset},
                                {"nodes", e.nodes},
                                {"dynamic_batch", e.dynamic_batch},
                                {"check_inputs", e.check.inputs},
                                {"max_relative_error", e.check.max_relative_error},
                                {"top1_agreement", e.check.top1_agreement}}
                     .dump()
              << "\n";
    return 0;
  }
  std::cout << card->name << " -> " << out << " (ONNX opset " << kOnnxOpset << ", " << e.nodes << " nodes, batch "
            << (e.dynamic_batch ? "dynamic" : "fixed at 1") << ")\n"
            << "OpenCV DNN vs libtorch on " << e.check.inputs << " random inputs: max relative logit error "
            << e.check.max_relative_error << ", top-1 agreement " << fixed(100 * e.check.top1_agreement, 1) << "%\n"
            << e.card_path << "\n";
  return 0;
}

}  // namespace

Runner add_export_command(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand("export", "Write an ONNX copy of a TorchScript classifier, checked through OpenCV DNN");
  cmd->add_option("--model", args->model, "Zoo name, card (.json) or model file (.pt) with its card beside it")->required();
  cmd->add_option("--out", args->out, "The ONNX file (default: beside the model, NAME.onnx); its card is NAME.onnx.json");
  cmd->add_option("--check-inputs", args->options.check_inputs, "Random inputs run through both engines")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--tolerance", args->options.tolerance, "Largest relative logit difference accepted")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Print one JSON object");
  return [args] { return run(*args); };
}

}  // namespace edgefleet::cli
