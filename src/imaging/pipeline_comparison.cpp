#include "edgefleet/pipeline_comparison.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/thread_count.h"

namespace edgefleet {

std::string default_reference_pipeline() { return "decode:turbojpeg|resize:opencv,linear,256|crop:center,224"; }

std::vector<PipelineVariant> builtin_stage_variants() {
  const std::string geometry = "resize:opencv,linear,256|crop:center,224";
  std::vector<PipelineVariant> v;
  for (const char* decode : {"decode:turbojpeg,dct=ifast", "decode:turbojpeg,dct=float", "decode:turbojpeg,upsampling=simple",
                             "decode:opencv", "decode:magick", "decode:vips"}) {
    v.push_back({"decode", std::string(decode) + "|" + geometry});
  }
  for (const char* codec : {"encode:jpeg,quality=100", "encode:jpeg,quality=85", "encode:jpeg,quality=50",
                            "encode:jpeg,quality=85,subsampling=444", "encode:jpeg,quality=85,dct=ifast", "encode:png",
                            "encode:webp", "encode:webp,lossless=1", "encode:heif"}) {
    v.push_back({"codec", std::string("decode:turbojpeg|") + codec + "|" + geometry});
  }
  for (const char* resize : {"opencv,nearest", "opencv,cubic", "opencv,area", "opencv,lanczos4", "opencv,linear_exact",
                             "vips,linear", "vips,cubic", "vips,lanczos3", "magick,triangle", "magick,catrom",
                             "magick,lanczos", "magick,mitchell", "torch,nearest", "torch,bilinear",
                             "torch,bilinear,256,antialias=1", "torch,bicubic,256,antialias=1"}) {
    std::string stage = std::string("resize:") + resize;
    if (stage.find(",256") == std::string::npos) stage += ",256";
    v.push_back({"resize", "decode:turbojpeg|" + stage + "|crop:center,224"});
  }
  v.push_back({"crop", "decode:turbojpeg|resize:opencv,linear,224x224"});
  v.push_back({"crop", "decode:turbojpeg|resize:opencv,linear,224|crop:center,224"});
  v.push_back({"crop", "decode:turbojpeg|crop:center,0.875|resize:opencv,linear,224x224"});
  for (const char* color : {"bt601,full", "bt601,limited", "bt709,full", "bt709,limited", "bt709,limited,chroma=420",
                            "bt601,full,rounding=float", "bt601,full,order=bgr"}) {
    v.push_back({"color", "decode:turbojpeg|color:" + std::string(color) + "|" + geometry});
  }
  for (const char* camera : {"opencv", "opencv,demosaic=vng", "opencv,demosaic=ea", "opencv,wb=grayworld",
                             "opencv,gamma=bt709", "opencv,denoise=3,sharpen=0.5", "opencv,shot=0.001,read=0.00005",
                             "libraw,demosaic=linear", "libraw,demosaic=ahd", "libraw,demosaic=dcb", "libraw,demosaic=dht"}) {
    v.push_back({"camera", "decode:turbojpeg|camera:" + std::string(camera) + "|" + geometry});
  }
  return v;
}

Expected<std::vector<std::string>> list_image_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_directory(dir, error)) return not_found("image folder '" + dir + "' does not exist");
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(dir, error); !error && it != fs::recursive_directory_iterator();
       it.increment(error)) {
    if (!it->is_regular_file()) continue;
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    for (const char* known : {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".bmp", ".tif", ".tiff"}) {
      if (ext == known) files.push_back(it->path().string());
    }
  }
  if (error) return io_error("cannot list '" + dir + "': " + error.message());
  std::sort(files.begin(), files.end());
  if (files.empty()) return not_found("no image files under '" + dir + "'");
  return files;
}

namespace {

struct Accumulator {
  std::size_t images = 0, failures = 0, identical = 0, shape_mismatches = 0;
  double sum_mad = 0.0, worst = 0.0;
  std::string first_error;
};

}  // namespace

Expected<std::vector<PipelineDifference>> compare_pipelines(const Pipeline& reference,
                                                            const std::vector<PipelineVariant>& variants,
                                                            const std::vector<std::string>& files, int threads) {
  std::vector<Pipeline> parsed;
  for (const auto& variant : variants) {
    auto pipeline = parse_pipeline(variant.spec);
    if (!pipeline) return pipeline.status();
    parsed.push_back(std::move(*pipeline));
  }
  std::vector<Accumulator> totals(variants.size());
  std::mutex mutex;
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t f = next++; f < files.size(); f = next++) {
      auto bytes = read_file_bytes(files[f]);
      if (!bytes) continue;
      auto expected = run_pipeline(reference, *bytes, files[f]);
      if (!expected) continue;
      for (std::size_t v = 0; v < parsed.size(); ++v) {
        auto got = run_pipeline(parsed[v], *bytes, files[f]);
        std::lock_guard<std::mutex> lock(mutex);
        Accumulator& total = totals[v];
        if (!got) {
          if (total.failures++ == 0) total.first_error = got.status().to_string();
          continue;
        }
        if (got->width != expected->width || got->height != expected->height || got->channels != expected->channels) {
          ++total.shape_mismatches;
          continue;
        }
        double sum = 0;
        for (std::size_t i = 0; i < got->pixels.size(); ++i) sum += std::abs(int(got->pixels[i]) - int(expected->pixels[i]));
        const double mad = sum / std::max<std::size_t>(1, got->pixels.size());
        total.images++;
        total.identical += mad == 0.0;
        total.sum_mad += mad;
        total.worst = std::max(total.worst, mad);
      }
    }
  };
  std::vector<std::thread> pool;
  const int n = std::min<int>(resolve_thread_count(threads), static_cast<int>(std::max<std::size_t>(1, files.size())));
  for (int t = 0; t < n; ++t) pool.emplace_back(worker);
  for (auto& thread : pool) thread.join();

  std::vector<PipelineDifference> out;
  for (std::size_t v = 0; v < variants.size(); ++v) {
    const Accumulator& t = totals[v];
    PipelineDifference d;
    d.variant = variants[v];
    d.variant.spec = pipeline_to_string(parsed[v]);
    d.images = t.images;
    d.failures = t.failures;
    d.identical = t.identical;
    d.shape_mismatches = t.shape_mismatches;
    d.mean_abs_diff = t.images ? t.sum_mad / t.images : 0.0;
    d.worst_image_mad = t.worst;
    d.first_error = t.first_error;
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace edgefleet
