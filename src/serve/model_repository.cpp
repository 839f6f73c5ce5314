#include "edgefleet/model_repository.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>

namespace fs = std::filesystem;

namespace edgefleet {
namespace {

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'; });
}

}  // namespace

Expected<std::vector<RepositoryEntry>> scan_repository(const std::string& dir) {
  return capture([&] {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw Error(not_found("model repository: no such folder '" + dir + "'"));
    std::vector<RepositoryEntry> entries;
    std::set<std::string> tasks;
    std::map<std::string, std::string> owner;  // variant -> task
    for (const auto& task_dir : fs::directory_iterator(dir)) {
      const std::string task = task_dir.path().filename().string();
      if (!task_dir.is_directory() || task[0] == '.') continue;
      if (!valid_name(task)) throw Error(invalid_argument("model repository: task folder '" + task + "' is not a valid name (letters, digits, _ - .)"));
      tasks.insert(task);
      for (const auto& variant_dir : fs::directory_iterator(task_dir.path())) {
        const std::string variant = variant_dir.path().filename().string();
        if (!variant_dir.is_directory() || variant[0] == '.') continue;
        if (!valid_name(variant)) throw Error(invalid_argument("model repository: variant folder '" + task + "/" + variant + "' is not a valid name"));
        std::vector<std::string> cards;
        for (const auto& file : fs::directory_iterator(variant_dir.path())) {
          if (file.is_regular_file() && file.path().extension() == ".json") cards.push_back(file.path().string());
        }
        if (cards.size() != 1) {
          throw Error(invalid_argument("model repository: '" + task + "/" + variant + "' holds " + std::to_string(cards.size()) +
                                       " cards (*.json); expected exactly one"));
        }
        if (auto [it, fresh] = owner.emplace(variant, task); !fresh) {
          throw Error(invalid_argument("model repository: variant '" + variant + "' appears in tasks '" + it->second + "' and '" +
                                       task + "'; variant names must be unique"));
        }
        entries.push_back({task, variant, cards.front()});
      }
    }
    for (const auto& e : entries) {
      if (tasks.count(e.variant)) throw Error(invalid_argument("model repository: variant '" + e.task + "/" + e.variant + "' has a task's name"));
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return std::tie(a.task, a.variant) < std::tie(b.task, b.variant); });
    return entries;
  });
}

Expected<RepositoryEntry> add_to_repository(const std::string& dir, const std::string& task, const ModelCard& card,
                                            const std::string& variant_name) {
  return capture([&] {
    const std::string variant = variant_name.empty() ? card.name : variant_name;
    if (!valid_name(task)) throw Error(invalid_argument("task name '" + task + "' is not valid (letters, digits, _ - .)"));
    if (!valid_name(variant)) throw Error(invalid_argument("variant name '" + variant + "' is not valid (letters, digits, _ - .)"));
    if (variant == task) throw Error(invalid_argument("a variant may not share its task's name '" + task + "'"));
    const fs::path model = card.model_path();
    if (!fs::is_regular_file(model)) throw Error(not_found("model file '" + model.string() + "' of card '" + card.name + "' is missing"));
    const fs::path target = fs::path(dir) / task / variant;
    const fs::path staging = fs::path(dir) / task / ("." + variant + ".staging");
    fs::remove_all(staging);
    fs::create_directories(staging);
    fs::copy_file(model, staging / model.filename(), fs::copy_options::overwrite_existing);
    ModelCard copy = card;
    copy.file = model.filename().string();
    const Status written = write_card(copy, (staging / (variant + ".json")).string());
    if (!written.is_ok()) throw Error(written);
    // A server polling the repository never sees a half-written variant (at worst, briefly none).
    const fs::path old = fs::path(dir) / task / ("." + variant + ".old");
    fs::remove_all(old);
    if (fs::exists(target)) fs::rename(target, old);
    fs::rename(staging, target);
    fs::remove_all(old);
    return RepositoryEntry{task, variant, (target / (variant + ".json")).string()};
  });
}

}  // namespace edgefleet
