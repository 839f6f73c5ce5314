// Internal: a private temporary folder, removed with everything in it when it goes out of
// scope. Each one has its own name (process id and a counter), so concurrent users never share
// files.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

namespace edgefleet {

class ScratchFolder {
 public:
  explicit ScratchFolder(const std::string& purpose) {
    static std::atomic<unsigned long> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("edgefleet-" + purpose + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~ScratchFolder() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace edgefleet
