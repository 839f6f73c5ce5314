// Helpers shared by the tests: temporary folders, tiny fixtures written on the fly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgefleet/image.h"
#include "edgefleet/model_card.h"

namespace edgefleet::testing {

// A fresh folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_text(const std::string& path, const std::string& text);
// The file's bytes; empty when it cannot be read.
std::string read_text(const std::string& path);
void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes);
// Writes a PNG of the given size and channel count with a deterministic pattern.
void write_png(const std::string& path, int width, int height, int channels, int seed = 0);

// Writes an IDX image+label pair of `count` 28x28 items into `dir` (gzipped when `gzip`).
void write_fashion_mnist_split(const std::string& dir, const std::string& prefix, int count, bool gzip);

// Builds the zoo's cheapest architecture with random weights, saves it as `name`.pt with a
// card in `dir`, and returns the card.
ModelCard write_tiny_model(const std::string& dir, const std::string& name = "tiny");
// The same for the built-in zoo architecture `zoo_name`, with `top1` recorded as the card's
// accuracy (what the server's selection reads).
ModelCard write_zoo_model(const std::string& dir, const std::string& name, const std::string& zoo_name, double top1);

bool fashion_mnist_installed();

// A deterministic "photo": smooth colour gradients, a disc with a sharp edge and fine stripes,
// so that resizers, codecs and demosaicers all have something to disagree about.
Image make_test_photo(int width, int height, int channels = 3);

// Mean absolute difference per sample of two images of the same shape (-1 when shapes differ).
double mean_abs_diff(const Image& a, const Image& b);
int max_abs_diff(const Image& a, const Image& b);

// A real `edgefleet serve` process on a free loopback port (stdout and stderr to files in
// `dir`), killed when the object dies unless it was stopped.
class ServeProcess {
 public:
  ServeProcess(const TempDir& dir, const std::string& repository, const std::vector<std::string>& extra_args,
               const std::vector<std::string>& extra_env = {});
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  int pid() const { return pid_; }
  int port() const { return port_; }  // 0 when it exited (or hung) before printing its address
  bool alive() const;
  long rss_kb() const;  // resident memory now, from /proc
  // SIGTERM, then the exit status as waitpid gives it.
  int terminate();
  std::string stderr_text() const;

 private:
  int pid_ = -1;
  int port_ = 0;
  std::string log_;
};

// Sends `bytes` on a fresh TCP connection to 127.0.0.1:port (from `source`, another loopback
// address, when not empty) and returns what the server answered before closing the
// connection or before `timeout_ms` of silence.
// `later`, when not empty, is sent 300 ms after `bytes` (so that the server reads it apart).
std::string raw_http(int port, const std::string& bytes, int timeout_ms = 5000, const std::string& source = "",
                     const std::string& later = "");

}  // namespace edgefleet::testing
