#include "edgefleet/device_profile.h"

#include "core/data_dir.h"
#include "edgefleet/pipeline.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace edgefleet {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

class Reader {
 public:
  explicit Reader(std::string origin) : origin_(std::move(origin)) {}

  [[noreturn]] void fail(const std::string& what) const { throw Error(invalid_argument(origin_ + ": " + what)); }

  void only_fields(const json& j, const std::string& where, const std::set<std::string>& allowed) const {
    if (!j.is_object()) fail("'" + where + "' must be an object");
    for (const auto& [key, value] : j.items()) {
      if (!allowed.count(key)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail("unknown field '" + (where.empty() ? "" : where + ".") + key + "' (allowed: " + list + ")");
      }
    }
  }

  std::string string(const json& j, const std::string& key, const std::string& where, bool required,
                     const std::string& fallback = "") const {
    if (!j.contains(key)) {
      if (required) fail("missing field '" + where + key + "'");
      return fallback;
    }
    if (!j[key].is_string()) fail("field '" + where + key + "' must be a string, got " + j[key].dump());
    return j[key].get<std::string>();
  }

  // A number in (0, max], or [0, max] with allow_zero; a whole one when `whole`.
  double positive(const json& j, const std::string& key, const std::string& where, double max, bool allow_zero = false,
                  bool whole = false) const {
    if (!j.contains(key)) fail("missing field '" + where + key + "'");
    const double v = j[key].is_number() ? j[key].get<double>() : -1.0;
    const bool inside = std::isfinite(v) && (allow_zero ? v >= 0 : v > 0) && v <= max && (!whole || v == std::floor(v));
    if (!inside) {
      std::ostringstream range;
      range << (allow_zero ? "[0, " : "(0, ") << max << "]";
      fail("field '" + where + key + "' must be a " + (whole ? "whole number" : "number") + " in " + range.str() + ", got " + j[key].dump());
    }
    return v;
  }

  void one_of(const std::string& value, const std::string& field, const std::vector<std::string>& allowed) const {
    if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail("field '" + field + "' is '" + value + "', expected one of " + list);
  }

 private:
  std::string origin_;
};

}  // namespace

Expected<DeviceProfile> device_profile_from_json(const json& j, const std::string& origin) {
  return capture([&]() -> DeviceProfile {
    Reader r(origin);
    r.only_fields(j, "", {"$schema", "name", "description", "class", "hardware", "environment", "network", "latency_model", "notes"});
    DeviceProfile p;
    p.name = r.string(j, "name", "", true);
    if (p.name.empty() || p.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") != std::string::npos) {
      r.fail("field 'name' is '" + p.name + "', expected lowercase letters, digits, '-', '_' or '.'");
    }
    p.description = r.string(j, "description", "", false);
    p.device_class = r.string(j, "class", "", true);
    r.one_of(p.device_class, "class", {"microcontroller", "single-board", "edge-gpu", "phone", "edge-server", "datacenter"});

    if (!j.contains("hardware")) r.fail("missing field 'hardware'");
    const json& h = j["hardware"];
    r.only_fields(h, "hardware", {"soc", "peak_gflops", "memory_bandwidth_gbs", "memory_mb", "sources", "notes"});
    p.hardware.soc = r.string(h, "soc", "hardware.", true);
    p.hardware.peak_gflops = r.positive(h, "peak_gflops", "hardware.", 1e7);
    p.hardware.memory_bandwidth_gbs = r.positive(h, "memory_bandwidth_gbs", "hardware.", 1e6);
    p.hardware.memory_mb = r.positive(h, "memory_mb", "hardware.", 1e9);
    if (!h.contains("sources") || !h["sources"].is_array() || h["sources"].empty()) {
      r.fail("field 'hardware.sources' must list the spec sheets the numbers come from");
    }
    for (const auto& s : h["sources"]) {
      if (!s.is_string()) r.fail("field 'hardware.sources' must hold strings");
      p.hardware.sources.push_back(s.get<std::string>());
    }

    if (!j.contains("environment")) r.fail("missing field 'environment'");
    const json& e = j["environment"];
    r.only_fields(e, "environment", {"pipeline", "precision", "engine", "threads", "notes"});
    if (e.contains("pipeline")) {
      auto pipeline = pipeline_from_json(e["pipeline"]);
      if (!pipeline) r.fail("field 'environment.pipeline': " + pipeline.status().message());
      p.environment.pipeline = std::move(*pipeline);
    }
    InferenceSetting& inference = p.environment.inference;
    if (e.contains("precision")) {
      auto precision = parse_precision(r.string(e, "precision", "environment.", true));
      if (!precision) r.fail("field 'environment.precision': " + precision.status().message());
      inference.precision = *precision;
    }
    if (e.contains("engine")) {
      auto engine = parse_engine(r.string(e, "engine", "environment.", true));
      if (!engine) r.fail("field 'environment.engine': " + engine.status().message());
      inference.engine = *engine;
    }
    if (e.contains("threads")) inference.threads = static_cast<int>(r.positive(e, "threads", "environment.", 1024, true, true));
    const Status runnable = check_inference_setting(inference);
    if (!runnable.is_ok()) r.fail("field 'environment': " + runnable.message());

    if (!j.contains("network")) r.fail("missing field 'network'");
    const json& n = j["network"];
    r.only_fields(n, "network", {"rtt_ms_mean", "rtt_ms_std", "trace", "notes"});
    if (n.contains("trace")) {
      p.network.trace = r.string(n, "trace", "network.", true);
      const fs::path trace = fs::path(origin).parent_path() / p.network.trace;
      if (!fs::exists(trace)) r.fail("network.trace file '" + trace.string() + "' does not exist");
    } else {
      p.network.rtt_ms_mean = r.positive(n, "rtt_ms_mean", "network.", 1e6);
      p.network.rtt_ms_std = r.positive(n, "rtt_ms_std", "network.", 1e6, true);
    }
    if (j.contains("latency_model")) {
      if (!j["latency_model"].is_object()) r.fail("field 'latency_model' must be an object (written by edgefleet device calibrate)");
      p.latency_model = j["latency_model"].dump();
    }
    p.path = origin;
    return p;
  });
}

json device_profile_to_json(const DeviceProfile& p) {
  json network = p.network.trace.empty() ? json{{"rtt_ms_mean", p.network.rtt_ms_mean}, {"rtt_ms_std", p.network.rtt_ms_std}}
                                         : json{{"trace", p.network.trace}};
  json out{{"name", p.name},
          {"description", p.description},
          {"class", p.device_class},
          {"hardware",
           {{"soc", p.hardware.soc},
            {"peak_gflops", p.hardware.peak_gflops},
            {"memory_bandwidth_gbs", p.hardware.memory_bandwidth_gbs},
            {"memory_mb", p.hardware.memory_mb},
            {"sources", p.hardware.sources}}},
          {"environment",
           {{"pipeline", pipeline_to_string(p.environment.pipeline)},
            {"precision", precision_name(p.environment.inference.precision)},
            {"engine", engine_name(p.environment.inference.engine)},
            {"threads", p.environment.inference.threads}}},
          {"network", network}};
  if (!p.latency_model.empty()) out["latency_model"] = json::parse(p.latency_model);
  return out;
}

Expected<DeviceProfile> read_device_profile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("device profile '" + path + "' does not exist or cannot be read");
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) return invalid_argument(path + ": not valid JSON");
  return device_profile_from_json(j, path);
}

std::string fleet_dir(const std::string& name) {
  if (name == "builtin") return builtin_fleet_dir();
  if (name == "phones") return builtin_fleet_dir() + "/phones";
  return name;
}

Expected<std::vector<DeviceProfile>> read_fleet(const std::string& name) {
  const std::string dir = fleet_dir(name);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return not_found("fleet folder '" + dir + "' does not exist");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".json") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) return invalid_argument("fleet folder '" + dir + "' holds no device profiles (*.json)");
  std::vector<DeviceProfile> fleet;
  std::map<std::string, std::string> names;
  for (const auto& file : files) {
    auto profile = read_device_profile(file);
    if (!profile) return profile.status();
    if (names.count(profile->name)) {
      return invalid_argument(file + ": device name '" + profile->name + "' is already used by " + names[profile->name]);
    }
    names[profile->name] = file;
    fleet.push_back(std::move(*profile));
  }
  return fleet;
}

Expected<DeviceProfile> find_device(const std::string& dir, const std::string& name) {
  auto fleet = read_fleet(dir);
  if (!fleet) return fleet.status();
  std::string names;
  for (auto& device : *fleet) {
    if (device.name == name) return std::move(device);
    names += (names.empty() ? "" : ", ") + device.name;
  }
  return not_found("no device '" + name + "' in the fleet " + fleet_dir(dir) + " (devices: " + names + ")");
}

std::string builtin_fleet_dir() {
  if (const char* dir = std::getenv("EDGEFLEET_FLEET_DIR")) return dir;
  return data_dir() + "/fleet";
}

}  // namespace edgefleet
