// edgefleet repository add|list: build and inspect a model repository for edgefleet serve.
#include <iostream>

#include "cli/cli_common.h"
#include "edgefleet/model_card.h"
#include "edgefleet/model_repository.h"

namespace edgefleet::cli {

Runner add_repository_command(CLI::App& app) {
  struct Args {
    std::string dir;
    std::string task;
    std::vector<std::string> models;
    std::string variant;
  };
  auto args = std::make_shared<Args>();
  auto* command = app.add_subcommand("repository", "Build or list a model repository for edgefleet serve");
  command->require_subcommand(1);
  auto* add = command->add_subcommand("add", "Copy models and their cards into DIR/TASK/NAME/");
  add->add_option("dir", args->dir, "Repository folder")->required();
  add->add_option("--task", args->task, "Task the models serve (functionally equivalent variants)")->required();
  add->add_option("models", args->models, "Model cards, model files or built-in zoo names")->required();
  add->add_option("--variant", args->variant, "Variant name (one model only; default: the card's name)");
  auto* list = command->add_subcommand("list", "List the variants of a repository");
  list->add_option("dir", args->dir, "Repository folder")->required();
  return [args, add] {
    if (add->parsed()) {
      if (!args->variant.empty() && args->models.size() != 1) {
        return fail(invalid_argument("--variant names one variant; give exactly one model with it"));
      }
      for (const auto& model : args->models) {
        auto card = resolve_model(model);
        if (!card) return fail(card.status());
        auto entry = add_to_repository(args->dir, args->task, card.value(), args->variant);
        if (!entry) return fail(entry.status());
        std::cout << "added " << entry->task << "/" << entry->variant << "\n";
      }
      return 0;
    }
    auto entries = scan_repository(args->dir);
    if (!entries) return fail(entries.status());
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : entries.value()) {
      auto card = read_card(e.card_path);
      if (!card) return fail(card.status());
      rows.push_back({e.task, e.variant, card->accuracy ? fixed(100 * card->accuracy->top1, 2) : "-", human_count(card->params),
                      human_count(card->macs)});
    }
    std::cout << format_table({"task", "variant", "top-1 %", "params", "MACs"}, rows);
    return 0;
  };
}

}  // namespace edgefleet::cli
