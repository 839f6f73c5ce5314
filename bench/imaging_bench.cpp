// Decode and resize throughput (megapixels/s) of edgefleet's imaging stages, one thread, over
// the pictures in $EDGEFLEET_BENCH_IMAGES (*.jpg, *.png, *.webp; bench/compare_imaging.sh
// prepares them). Names match bench/python_imaging.py's for the ratio table.
#include <benchmark/benchmark.h>
#include <opencv2/core.hpp>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>

#include "edgefleet/decode.h"
#include "edgefleet/resize.h"

namespace {

using edgefleet::Image;
using Bytes = std::vector<std::uint8_t>;

std::map<std::string, std::vector<Bytes>>& files_by_extension() {
  static std::map<std::string, std::vector<Bytes>> files;
  return files;
}

std::vector<Image>& decoded_jpegs() {
  static std::vector<Image> images;
  return images;
}

void decode(benchmark::State& state, edgefleet::Decoder decoder, std::string extension, edgefleet::DctMethod dct) {
  const auto& files = files_by_extension()[extension];
  edgefleet::DecodeOptions options;
  options.decoder = decoder;
  options.dct = dct;
  double pixels = 0;
  for (auto _ : state) {
    for (const auto& bytes : files) {
      auto image = edgefleet::decode_image(bytes, "bench", options);
      if (!image) {
        state.SkipWithError(image.status().to_string().c_str());
        return;
      }
      pixels += static_cast<double>(image->width) * image->height;
    }
  }
  state.counters["MP/s"] = benchmark::Counter(pixels / 1e6, benchmark::Counter::kIsRate);
}

void resize(benchmark::State& state, edgefleet::ResizeLibrary library, std::string method, bool antialias) {
  edgefleet::ResizeOptions options;
  options.library = library;
  options.method = method;
  options.antialias = antialias;
  options.size.shorter_side = 256;
  double pixels = 0;
  for (auto _ : state) {
    for (const auto& image : decoded_jpegs()) {
      auto out = edgefleet::resize_image(image, options);
      if (!out) {
        state.SkipWithError(out.status().to_string().c_str());
        return;
      }
      pixels += static_cast<double>(image.width) * image.height;  // source megapixels, as Python counts
    }
  }
  state.counters["MP/s"] = benchmark::Counter(pixels / 1e6, benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  const char* dir = std::getenv("EDGEFLEET_BENCH_IMAGES");
  if (dir == nullptr || !std::filesystem::is_directory(dir)) {
    std::cerr << "set EDGEFLEET_BENCH_IMAGES to a folder of .jpg/.png/.webp pictures (bench/compare_imaging.sh does)\n";
    return 1;
  }
  std::vector<std::filesystem::path> paths;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) paths.push_back(entry.path());
  std::sort(paths.begin(), paths.end());
  for (const auto& path : paths) {
    auto bytes = edgefleet::read_file_bytes(path.string());
    if (!bytes) continue;
    files_by_extension()[path.extension().string()].push_back(*bytes);
    if (path.extension() == ".jpg") decoded_jpegs().push_back(edgefleet::decode_image(*bytes, path.string()).value());
  }
  // One thread everywhere: the comparison is per-core speed.
  cv::setNumThreads(1);
  torch::set_num_threads(1);
  using D = edgefleet::Decoder;
  using M = edgefleet::DctMethod;
  using R = edgefleet::ResizeLibrary;
  const struct {
    const char* name;
    D decoder;
    const char* extension;
    M dct;
  } decodes[] = {{"decode/jpeg/turbojpeg", D::kTurboJpeg, ".jpg", M::kIslow},
                 {"decode/jpeg/turbojpeg-ifast", D::kTurboJpeg, ".jpg", M::kIfast},
                 {"decode/jpeg/opencv", D::kOpenCv, ".jpg", M::kIslow},
                 {"decode/jpeg/magick", D::kMagick, ".jpg", M::kIslow},
                 {"decode/jpeg/vips", D::kVips, ".jpg", M::kIslow},
                 {"decode/png/libpng", D::kLibPng, ".png", M::kIslow},
                 {"decode/png/opencv", D::kOpenCv, ".png", M::kIslow},
                 {"decode/webp/libwebp", D::kLibWebp, ".webp", M::kIslow},
                 {"decode/webp/opencv", D::kOpenCv, ".webp", M::kIslow}};
  for (const auto& d : decodes) {
    benchmark::RegisterBenchmark(d.name, decode, d.decoder, std::string(d.extension), d.dct)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime();
  }
  const struct {
    const char* name;
    R library;
    const char* method;
    bool antialias;
  } resizes[] = {{"resize/opencv-linear", R::kOpenCv, "linear", false},
                 {"resize/opencv-area", R::kOpenCv, "area", false},
                 {"resize/opencv-cubic", R::kOpenCv, "cubic", false},
                 {"resize/opencv-lanczos4", R::kOpenCv, "lanczos4", false},
                 {"resize/torch-bilinear-antialias", R::kTorch, "bilinear", true},
                 {"resize/torch-bicubic-antialias", R::kTorch, "bicubic", true},
                 {"resize/vips-linear", R::kVips, "linear", false},
                 {"resize/vips-lanczos3", R::kVips, "lanczos3", false},
                 {"resize/magick-triangle", R::kMagick, "triangle", false},
                 {"resize/magick-lanczos", R::kMagick, "lanczos", false}};
  for (const auto& r : resizes) {
    benchmark::RegisterBenchmark(r.name, resize, r.library, std::string(r.method), r.antialias)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
