// Which part of a long run this process does, given on the command line ("k/n") or by the
// batch scheduler that started it: a Slurm job array or a Kubernetes indexed Job. Shard k of n
// takes the inputs i with i % n == k.
//
//   auto shard = shard_from_environment(getenv_reader).value();  // nullopt: not in an array
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "edgefleet/status.h"

namespace edgefleet {

struct Shard {
  int index = 0;
  int count = 1;
  std::string from = "default";  // "--shard", or the variable that gave the index
};

// "k/n" with 0 <= k < n; invalid_argument otherwise.
Expected<Shard> parse_shard(const std::string& text);

// Reads one environment variable (nullopt when unset).
using EnvironmentReader = std::function<std::optional<std::string>(const std::string&)>;
EnvironmentReader process_environment();

// The shard a scheduler assigned, or nullopt when no scheduler variable is set:
//  - Slurm job arrays: with the count given once (`count`, i.e. --shard-count, or
//    EDGEFLEET_SHARD_COUNT), index SLURM_ARRAY_TASK_ID itself — so resubmitting one failed
//    index (--array=2) runs that shard again. Without it, index SLURM_ARRAY_TASK_ID -
//    SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT (or MAX - MIN + 1); an array whose
//    indices are not contiguous (a step or a list) is refused: give the count.
//  - Kubernetes indexed Jobs: index JOB_COMPLETION_INDEX, count `count` (the job's
//    completions, given once: --shard-count) or EDGEFLEET_SHARD_COUNT.
// invalid_argument names the variable when one is malformed, out of range or incomplete.
Expected<std::optional<Shard>> shard_from_environment(const EnvironmentReader& env, int count = 0);

}  // namespace edgefleet
