// Internal: where the built-in data lives — the zoo's models, the fleet's profiles, the
// simulator's zoos, the experiments — so that an installed edgefleet finds them wherever its
// prefix was moved.
#pragma once

#include <string>

namespace edgefleet {

// In order: $EDGEFLEET_DATA_DIR; PREFIX/share/edgefleet beside the running executable's
// PREFIX/bin (an installed copy, found relative to itself); the source tree this build came
// from (a build that was not installed).
std::string data_dir();

}  // namespace edgefleet
