// The hardening result as the paper's Table 6 (Markdown), JSON, and an HTML page with plots.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "edgefleet/hardening.h"
#include "edgefleet/plot.h"

namespace edgefleet {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string percent(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", 100 * v);
  return buffer;
}

// Table rows in the paper's order: per loss, the noises; then no noise and mixed training.
std::vector<int> ordered_rows(const HardenResult& r) {
  std::vector<int> out;
  for (StabilityLoss loss : {StabilityLoss::kKl, StabilityLoss::kEmbedding, StabilityLoss::kNone}) {
    for (int c : r.table_rows) {
      if (r.candidates[c].setting.loss == loss) out.push_back(c);
    }
  }
  return out;
}

struct Row {
  std::vector<std::string> cells;
  bool chosen = false;
};

std::vector<std::string> header() {
  return {"noise", "loss", "hyper-parameters", "validation top-1 %", "validation instability %",
          "held-out instability %", "held-out top-3 instability %", "held-out mean top-1 %", "top-1 %", "top-3 %"};
}

std::vector<Row> table_rows(const HardenResult& r) {
  std::vector<Row> rows;
  const ModelEvaluation& b = r.before;
  rows.push_back({{"base model", "-", "not fine-tuned", percent(r.base_validation_top1), percent(r.base_validation_instability),
                   percent(b.heldout_instability), percent(b.heldout_instability_top3), percent(b.heldout_mean_top1),
                   percent(b.top1), percent(b.top3)}});
  for (int c : ordered_rows(r)) {
    const CandidateResult& k = r.candidates[c];
    const ModelEvaluation& t = k.test;
    const std::string noise = k.setting.noise == NoiseKind::kNone ? "no noise" : noise_kind_name(k.setting.noise);
    rows.push_back({{noise, k.setting.loss == StabilityLoss::kNone ? "-" : stability_loss_name(k.setting.loss),
                     hyper_parameters(k.setting), percent(k.validation_top1), percent(k.validation_instability),
                     percent(t.heldout_instability), percent(t.heldout_instability_top3), percent(t.heldout_mean_top1),
                     percent(t.top1), percent(t.top3)},
                    c == r.chosen});
  }
  return rows;
}

std::string escape_html(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

json evaluation_json(const ModelEvaluation& e) {
  return {{"top1", e.top1}, {"top3", e.top3}, {"top5", e.top5}, {"heldout_instability", e.heldout_instability},
          {"heldout_instability_top3", e.heldout_instability_top3}, {"heldout_disagreement", e.heldout_disagreement},
          {"heldout_mean_top1", e.heldout_mean_top1}, {"heldout_top1", e.heldout_top1}};
}

}  // namespace

std::string hardening_table_markdown(const HardenResult& r) {
  std::ostringstream out;
  out << "|";
  for (const auto& h : header()) out << " " << h << " |";
  out << "\n|";
  for (std::size_t i = 0; i < header().size(); ++i) out << "---|";
  out << "\n";
  for (const Row& row : table_rows(r)) {
    out << "|";
    for (std::size_t i = 0; i < row.cells.size(); ++i) {
      out << " " << (row.chosen && i == 0 ? "**" + row.cells[i] + "** (chosen)" : row.cells[i]) << " |";
    }
    out << "\n";
  }
  const ModelEvaluation& after = r.candidates[r.chosen].test;
  const ModelEvaluation& none = r.candidates[0].test;
  char summary[400];
  std::snprintf(summary, sizeof summary,
                "\nChosen: %s. Held-out top-1 instability %s%% -> %s%% (%.1f%% less; fine-tuning without noise: %s%%), "
                "top-1 %s%% -> %s%%.\n",
                harden_setting_to_string(r.candidates[r.chosen].setting).c_str(), percent(r.before.heldout_instability).c_str(),
                percent(after.heldout_instability).c_str(),
                r.before.heldout_instability > 0 ? 100 * (1 - after.heldout_instability / r.before.heldout_instability) : 0.0,
                percent(none.heldout_instability).c_str(), percent(r.before.top1).c_str(), percent(after.top1).c_str());
  out << summary;
  return out.str();
}

json hardening_result_json(const HardenResult& r) {
  json candidates = json::array();
  for (std::size_t c = 0; c < r.candidates.size(); ++c) {
    const auto& k = r.candidates[c];
    json j = {{"setting", harden_setting_to_string(k.setting)},
              {"noise", noise_kind_name(k.setting.noise)},
              {"loss", stability_loss_name(k.setting.loss)},
              {"hyper_parameters", hyper_parameters(k.setting)},
              {"validation_top1", k.validation_top1},
              {"validation_instability", k.validation_instability},
              {"train_seconds", k.train_seconds},
              {"model_file", k.model_file},
              {"table_row", std::find(r.table_rows.begin(), r.table_rows.end(), static_cast<int>(c)) != r.table_rows.end()},
              {"chosen", static_cast<int>(c) == r.chosen}};
    if (k.evaluated) j["test"] = evaluation_json(k.test);
    candidates.push_back(j);
  }
  return {{"base_model", r.base_model},
          {"train_environments", r.train_environments},
          {"heldout_environments", r.heldout_environments},
          {"base", {{"validation_top1", r.base_validation_top1},
                    {"validation_instability", r.base_validation_instability},
                    {"test", evaluation_json(r.before)}}},
          {"candidates", candidates},
          {"chosen", harden_setting_to_string(r.candidates[r.chosen].setting)},
          {"hardened_model", r.card.card_path},
          {"notes", r.notes}};
}

Status write_hardening_report(const HardenResult& r, const std::string& dir) {
  return capture([&]() -> bool {
           fs::create_directories(dir);
           auto write = [&](const std::string& name, const std::string& text) {
             std::ofstream out(fs::path(dir) / name);
             out << text;
             if (!out) throw Error(io_error("cannot write '" + (fs::path(dir) / name).string() + "'"));
           };
           write("result.json", hardening_result_json(r).dump(1));
           const std::string table = hardening_table_markdown(r);
           write("table.md", table);

           // Plots: validation instability against alpha per noise x loss; held-out instability
           // against clean accuracy per table row.
           LinePlot by_alpha{"Validation instability by stability-loss weight", "log10(alpha)", "instability %", {}};
           for (const auto& k : r.candidates) {
             if (k.setting.loss == StabilityLoss::kNone) continue;
             std::string series = noise_kind_name(k.setting.noise) + " " + stability_loss_name(k.setting.loss);
             const std::string params = hyper_parameters(k.setting);
             const auto space = params.find(' ');
             if (space != std::string::npos) series += params.substr(space);
             by_alpha.series[series].push_back({std::log10(k.setting.alpha), 100 * k.validation_instability});
           }
           LinePlot tradeoff{"Held-out instability vs accuracy", "top-1 %", "held-out instability %", {}};
           tradeoff.series["base model"].push_back({100 * r.before.top1, 100 * r.before.heldout_instability});
           for (int c : r.table_rows) {
             const auto& k = r.candidates[c];
             tradeoff.series[harden_setting_to_string(k.setting)].push_back({100 * k.test.top1, 100 * k.test.heldout_instability});
           }
           std::string plots;
           for (const auto& [plot, name] : {std::pair{&by_alpha, "instability_by_alpha.svg"}, std::pair{&tradeoff, "tradeoff.svg"}}) {
             const std::string path = (fs::path(dir) / name).string();
             if (write_line_plot_svg(*plot, path).is_ok()) plots += "<figure>" + read_file(path) + "</figure>\n";
           }

           std::ostringstream html;
           html << "<!doctype html><html><head><meta charset=\"utf-8\"><title>Hardening " << escape_html(r.base_model)
                << "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
                   "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th{text-align:left}"
                   "tr.chosen{background:#e6f4ea;font-weight:bold}figure{display:inline-block;margin:1em}</style></head><body>\n";
           html << "<h1>Hardening " << escape_html(r.base_model) << "</h1>\n<p>Trained against: "
                << escape_html([&] { std::string s; for (const auto& e : r.train_environments) s += (s.empty() ? "" : ", ") + e; return s; }())
                << ".<br>Measured on held-out environments: "
                << escape_html([&] { std::string s; for (const auto& e : r.heldout_environments) s += (s.empty() ? "" : ", ") + e; return s; }())
                << ".</p>\n<table><tr>";
           for (const auto& h : header()) html << "<th>" << escape_html(h) << "</th>";
           html << "</tr>\n";
           for (const Row& row : table_rows(r)) {
             html << "<tr" << (row.chosen ? " class=\"chosen\"" : "") << ">";
             for (const auto& cell : row.cells) html << "<td>" << escape_html(cell) << "</td>";
             html << "</tr>\n";
           }
           html << "</table>\n<p>" << escape_html(table.substr(table.rfind("\nChosen") + 1)) << "</p>\n";
           for (const auto& note : r.notes) html << "<p class=\"note\">" << escape_html(note) << "</p>\n";
           html << plots << "</body></html>\n";
           write("report.html", html.str());
           return true;
         })
      .status();
}

}  // namespace edgefleet
