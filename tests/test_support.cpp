#include "test_support.h"

#include <algorithm>
#include <cmath>

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <thread>

#include <filesystem>
#include <fstream>
#include <optional>
#include <opencv2/imgcodecs.hpp>
#include <random>

#include "edgefleet/dataset.h"
#include "edgefleet/sha256.h"
#include "edgefleet/zoo.h"
#include "zoo/module_builder.h"

extern char** environ;

namespace edgefleet::testing {
namespace fs = std::filesystem;

TempDir::TempDir() {
  static std::mt19937_64 rng(std::random_device{}());
  path_ = (fs::temp_directory_path() / ("edgefleet-test-" + std::to_string(rng()))).string();
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_png(const std::string& path, int width, int height, int channels, int seed) {
  cv::Mat mat(height, width, CV_MAKETYPE(CV_8U, channels));
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) mat.ptr<std::uint8_t>(y)[x * channels + c] = static_cast<std::uint8_t>((x * 7 + y * 13 + c * 50 + seed * 31) % 256);
    }
  }
  fs::create_directories(fs::path(path).parent_path());
  cv::imwrite(path, mat);
}

namespace {
void put_be32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
void write_maybe_gzipped(const std::string& path, const std::vector<std::uint8_t>& bytes, bool gzip) {
  if (!gzip) {
    write_bytes(path, bytes);
    return;
  }
  gzFile file = gzopen((path + ".gz").c_str(), "wb");
  gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(file);
}
}  // namespace

void write_fashion_mnist_split(const std::string& dir, const std::string& prefix, int count, bool gzip) {
  fs::create_directories(dir);
  std::vector<std::uint8_t> images, labels;
  put_be32(images, 2051);
  put_be32(images, static_cast<std::uint32_t>(count));
  put_be32(images, 28);
  put_be32(images, 28);
  put_be32(labels, 2049);
  put_be32(labels, static_cast<std::uint32_t>(count));
  for (int i = 0; i < count; ++i) {
    const int label = i % 10;
    // Class-dependent brightness so that a model can learn something.
    for (int p = 0; p < 784; ++p) images.push_back(static_cast<std::uint8_t>((label * 25 + (p % 28) * (label % 3)) % 256));
    labels.push_back(static_cast<std::uint8_t>(label));
  }
  write_maybe_gzipped(dir + "/" + prefix + "-images-idx3-ubyte", images, gzip);
  write_maybe_gzipped(dir + "/" + prefix + "-labels-idx1-ubyte", labels, gzip);
}

namespace {

ModelCard write_model(const std::string& dir, const std::string& name, const ZooEntry& entry,
                      std::optional<double> top1) {
  auto module = build_module(entry.arch, 7);
  module.eval();
  fs::create_directories(dir);
  const std::string pt = dir + "/" + name + ".pt";
  module.save(pt);
  ModelCard card;
  card.name = name;
  card.file = name + ".pt";
  card.format = ModelFormat::kTorchScript;
  card.sha256 = sha256_file(pt).value();
  card.input.color = InputColor::kGray;
  card.input.height = card.input.width = 28;
  card.input.resize = ResizeRule::kExact;
  card.input.interpolation = Interpolation::kArea;
  card.classes = 10;
  card.architecture_spec = nlohmann::json(entry.arch);
  if (top1) card.accuracy = AccuracyRecord{"fashion-mnist:test", 10000, *top1, 0.0};
  const std::string path = dir + "/" + name + ".json";
  EXPECT_TRUE(write_card(card, path).is_ok());
  return read_card(path).value();
}

}  // namespace

ModelCard write_tiny_model(const std::string& dir, const std::string& name) {
  return write_model(dir, name, builtin_zoo().front(), std::nullopt);
}

ModelCard write_zoo_model(const std::string& dir, const std::string& name, const std::string& zoo_name, double top1) {
  for (const auto& entry : builtin_zoo())
    if (entry.name == zoo_name) return write_model(dir, name, entry, top1);
  ADD_FAILURE() << "no zoo model " << zoo_name;
  return {};
}

bool fashion_mnist_installed() {
  return fs::exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz") ||
         fs::exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte");
}

Image make_test_photo(int width, int height, int channels) {
  Image image;
  image.width = width;
  image.height = height;
  image.channels = channels;
  image.pixels.resize(static_cast<std::size_t>(width) * height * channels);
  const double cx = width * 0.6, cy = height * 0.45, radius = std::min(width, height) * 0.3;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const bool disc = (x - cx) * (x - cx) + (y - cy) * (y - cy) < radius * radius;
      const bool stripe = x < width / 4 && ((x / 2) % 2 == 0);
      double rgb[3] = {40.0 + 180.0 * x / width, 30.0 + 170.0 * y / height, 120.0 + 60.0 * std::sin(x * 0.15 + y * 0.1)};
      if (disc) rgb[0] = 230, rgb[1] = 60, rgb[2] = 50;
      if (stripe) rgb[0] = rgb[1] = rgb[2] = 235;
      for (int c = 0; c < channels; ++c) {
        const double v = channels == 1 ? 0.3 * rgb[0] + 0.6 * rgb[1] + 0.1 * rgb[2] : c < 3 ? rgb[c] : 255.0 - x;
        image.pixels[(static_cast<std::size_t>(y) * width + x) * channels + c] =
            static_cast<std::uint8_t>(std::clamp(v, 0.0, 255.0));
      }
    }
  }
  return image;
}

double mean_abs_diff(const Image& a, const Image& b) {
  if (a.width != b.width || a.height != b.height || a.channels != b.channels || a.pixels.size() != b.pixels.size()) return -1;
  double sum = 0;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return a.pixels.empty() ? 0 : sum / a.pixels.size();
}

int max_abs_diff(const Image& a, const Image& b) {
  if (a.pixels.size() != b.pixels.size()) return 256;
  int worst = 0;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) worst = std::max(worst, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return worst;
}

ServeProcess::ServeProcess(const TempDir& dir, const std::string& repository, const std::vector<std::string>& extra_args,
                           const std::vector<std::string>& extra_env)
    : log_(dir.file("serve.log")) {
  const std::string cli = EDGEFLEET_CLI_PATH;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, (log_ + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> args = {cli, "serve", "--repository", repository, "--port", "0", "--warmup", "2"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage(extra_env);
  std::vector<char*> env;
  for (char** e = environ; *e; ++e) env.push_back(*e);
  for (auto& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, cli.c_str(), &actions, nullptr, argv.data(), env.data()), 0);
  posix_spawn_file_actions_destroy(&actions);
  pid_ = pid;
  for (int i = 0; i < 600 && alive(); ++i) {
    std::ifstream in(log_);
    std::string word, url;
    if (in >> word >> word >> url) {
      port_ = std::stoi(url.substr(url.rfind(':') + 1));
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

ServeProcess::~ServeProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool ServeProcess::alive() const {
  if (pid_ <= 0) return false;
  int status = 0;
  return waitpid(pid_, &status, WNOHANG) == 0;
}

long ServeProcess::rss_kb() const {
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

int ServeProcess::terminate() {
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

std::string ServeProcess::stderr_text() const { return read_text(log_ + ".err"); }

std::string raw_http(int port, const std::string& bytes, int timeout_ms, const std::string& source, const std::string& later) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  if (!source.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    inet_pton(AF_INET, source.c_str(), &local.sin_addr);
    bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local);
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  timeval limit{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);  // a server that stops reading
  std::string answer;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    const auto send_all = [fd](const std::string& part) {
      std::size_t sent = 0;
      while (sent < part.size()) {
        const ssize_t n = send(fd, part.data() + sent, part.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;  // the server may close early (413): read what it said
        sent += static_cast<std::size_t>(n);
      }
    };
    send_all(bytes);
    if (!later.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      send_all(later);
    }
    char buffer[65536];
    pollfd p{fd, POLLIN, 0};
    while (poll(&p, 1, timeout_ms) > 0) {
      const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      answer.append(buffer, static_cast<std::size_t>(n));
    }
  }
  close(fd);
  return answer;
}

}  // namespace edgefleet::testing
