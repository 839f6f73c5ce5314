// Internal: files written whole or not at all. The text goes to PATH.tmp, which is renamed
// over PATH, so an interrupted run never leaves a truncated result or checkpoint behind.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "edgefleet/status.h"

namespace edgefleet {

// Calls write(PATH.tmp), then renames PATH.tmp over PATH: the one temp-and-rename, for any
// writer (a TorchScript module's save, torch::save, a stream).
template <typename Write>
void replace_atomically(const std::string& path, Write&& write) {
  const std::string tmp = path + ".tmp";
  write(tmp);
  std::filesystem::rename(tmp, path);
}

// Throws Error(io_error) when the temporary file cannot be written.
inline void write_file_atomically(const std::string& text, const std::string& path) {
  replace_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    if (!out) throw Error(io_error("cannot write '" + tmp + "'"));
  });
}

}  // namespace edgefleet
