#include "core/data_dir.h"

#include <cstdlib>
#include <filesystem>

namespace edgefleet {

std::string data_dir() {
  namespace fs = std::filesystem;
  if (const char* dir = std::getenv("EDGEFLEET_DATA_DIR")) return dir;
  std::error_code ec;
  const fs::path executable = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = executable.parent_path().parent_path() / "share" / "edgefleet";
    if (fs::is_directory(installed / "fleet", ec)) return installed.string();
  }
  return EDGEFLEET_SOURCE_DIR;
}

}  // namespace edgefleet
