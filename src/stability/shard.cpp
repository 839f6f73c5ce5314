#include "edgefleet/shard.h"

#include <cstdlib>
#include <limits>

namespace edgefleet {
namespace {

// A whole non-negative decimal number, or nullopt.
std::optional<long> whole_number(const std::string& text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return std::strtol(text.c_str(), nullptr, 10);
}

Expected<long> number_variable(const EnvironmentReader& env, const std::string& name) {
  const auto value = env(name);
  if (!value) return not_found(name);
  const auto n = whole_number(*value);
  if (!n) return invalid_argument(name + "='" + *value + "' is not a non-negative whole number");
  return *n;
}

Expected<Shard> checked(long index, long count, const std::string& from) {
  if (count < 1) return invalid_argument(from + ": the shard count must be at least 1");
  if (index >= count) {
    return invalid_argument(from + ": shard index " + std::to_string(index) + " is not below the count " + std::to_string(count));
  }
  return Shard{static_cast<int>(index), static_cast<int>(count), from};
}

}  // namespace

Expected<Shard> parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  const auto index = slash == std::string::npos ? std::nullopt : whole_number(text.substr(0, slash));
  const auto count = slash == std::string::npos ? std::nullopt : whole_number(text.substr(slash + 1));
  if (!index || !count) return invalid_argument("--shard '" + text + "' is not k/n (for example 0/4)");
  return checked(*index, *count, "--shard");
}

EnvironmentReader process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (!value) return std::nullopt;
    return std::string(value);
  };
}

Expected<std::optional<Shard>> shard_from_environment(const EnvironmentReader& env, int count) {
  // The shard count given once (--shard-count or EDGEFLEET_SHARD_COUNT), 0 when not.
  long given = count;
  if (given <= 0 && env("EDGEFLEET_SHARD_COUNT")) {
    auto from_env = number_variable(env, "EDGEFLEET_SHARD_COUNT");
    if (!from_env) return from_env.status();
    given = *from_env;
  }
  if (env("SLURM_ARRAY_TASK_ID")) {
    auto id = number_variable(env, "SLURM_ARRAY_TASK_ID");
    if (!id) return id.status();
    if (given > 0) {
      // The array index is the shard index: resubmitting one index (--array=2) works.
      auto shard = checked(*id, given, "SLURM_ARRAY_TASK_ID");
      if (!shard) return shard.status();
      return std::optional<Shard>(*shard);
    }
    auto min = number_variable(env, "SLURM_ARRAY_TASK_MIN");
    auto max = number_variable(env, "SLURM_ARRAY_TASK_MAX");
    if (!min || !max) return invalid_argument("SLURM_ARRAY_TASK_ID is set without SLURM_ARRAY_TASK_MIN and _MAX");
    if (*max < *min || *id < *min || *id > *max) {
      return invalid_argument("SLURM_ARRAY_TASK_ID " + std::to_string(*id) + " is outside SLURM_ARRAY_TASK_MIN..MAX");
    }
    const long span = *max - *min + 1;
    if (env("SLURM_ARRAY_TASK_COUNT")) {
      auto n = number_variable(env, "SLURM_ARRAY_TASK_COUNT");
      if (!n) return n.status();
      if (*n != span) {
        return invalid_argument("the Slurm array's indices are not contiguous (SLURM_ARRAY_TASK_COUNT " + std::to_string(*n) +
                                ", MIN..MAX spans " + std::to_string(span) + "): give --shard k/n explicitly");
      }
    }
    auto shard = checked(*id - *min, span, "SLURM_ARRAY_TASK_ID");
    if (!shard) return shard.status();
    return std::optional<Shard>(*shard);
  }
  if (env("JOB_COMPLETION_INDEX")) {
    auto index = number_variable(env, "JOB_COMPLETION_INDEX");
    if (!index) return index.status();
    if (given <= 0) {
      return invalid_argument("JOB_COMPLETION_INDEX is set but not the shard count: give --shard-count (the Job's "
                              "completions) or EDGEFLEET_SHARD_COUNT");
    }
    auto shard = checked(*index, given, "JOB_COMPLETION_INDEX");
    if (!shard) return shard.status();
    return std::optional<Shard>(*shard);
  }
  return std::optional<Shard>();
}

}  // namespace edgefleet
