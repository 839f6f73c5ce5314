// Real raw developers as the camera's ISP: the mosaic is written as a DNG, developed by the
// program into a temporary folder, and read back. Each run gets its own folder (and darktable
// its own configuration and an in-memory library), so concurrent runs never share state.
#include <fstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/scratch_folder.h"
#include "core/subprocess.h"
#include "edgefleet/raw_file.h"
#include "imaging/camera_model.h"
#include "imaging/opencv_image.h"

namespace edgefleet {
namespace {

constexpr double kDeveloperTimeoutSeconds = 120;

const char* program_of(IspEngine isp) {
  switch (isp) {
    case IspEngine::kDcraw: return "dcraw";
    case IspEngine::kDarktable: return "darktable-cli";
    case IspEngine::kRawTherapee: return "rawtherapee-cli";
    default: return "";
  }
}

// The program's command line: DNG in, an 8-bit sRGB picture out (dcraw: PPM on stdout).
std::vector<std::string> command(const CameraOptions& options, const ScratchFolder& dir, std::string* output,
                                 std::string* stdout_path) {
  const std::string dng = dir.file("raw.dng");
  switch (options.isp) {
    case IspEngine::kDcraw: {
      static const char* kQuality[] = {"3", "0", "1", "2"};  // ahd bilinear vng ppg
      const auto& methods = demosaic_methods(IspEngine::kDcraw);
      const auto index = std::find(methods.begin(), methods.end(), options.demosaic) - methods.begin();
      *stdout_path = *output = dir.file("developed.ppm");
      return {"dcraw", "-c", "-w", "-q", kQuality[index], dng};
    }
    case IspEngine::kDarktable:
      *output = dir.file("developed.png");
      return {"darktable-cli", dng, *output, "--core", "--configdir", dir.file("darktable"), "--library", ":memory:"};
    default:
      *output = dir.file("developed.png");
      return {"rawtherapee-cli", "-o", *output, "-n", "-Y", "-c", dng};
  }
}

}  // namespace

Expected<std::string> raw_developer_version(IspEngine isp) {
  const std::string program = program_of(isp);
  if (program.empty()) return std::string();
  if (!program_on_path(program)) return not_found(program + " is not installed (scripts/install-deps.sh installs it)");
  const ScratchFolder dir("version");
  const std::string out = dir.file("version.txt");
  // dcraw prints its banner when run without arguments (and exits 1); the others take a flag.
  const std::vector<std::string> argv =
      isp == IspEngine::kDcraw ? std::vector<std::string>{"sh", "-c", "dcraw 2>&1; true"}
      : isp == IspEngine::kDarktable ? std::vector<std::string>{"darktable-cli", "--version"}
                                     : std::vector<std::string>{"sh", "-c", "rawtherapee-cli -v 2>&1 | head -1; true"};
  if (Status s = run_program(argv, 30, out); !s.is_ok()) return s;
  std::ifstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    for (const char* marker : {"dcraw\" v", "darktable-cli ", "version "}) {
      const auto at = line.find(marker);
      if (at == std::string::npos) continue;
      std::string version = line.substr(at + std::string(marker).size());
      version = version.substr(0, version.find_first_of(", "));
      return std::string(isp_engine_name(isp)) + " " + version;
    }
  }
  return std::string(isp_engine_name(isp)) + " (version not reported)";
}

namespace detail {

Expected<Image> process_raw_developer(const RawMosaic& raw, const CameraOptions& options) {
  const std::string program = program_of(options.isp);
  if (!program_on_path(program)) {
    return not_found("camera: " + program + " is not installed (scripts/install-deps.sh installs it)");
  }
  double red = 1, blue = 1;
  isp_gains(raw, options, &red, &blue);
  const ScratchFolder dir("develop");
  if (Status s = write_dng(raw, options, red, blue, dir.file("raw.dng")); !s.is_ok()) return s;
  std::string output, stdout_path;
  const auto argv = command(options, dir, &output, &stdout_path);
  if (Status s = run_program(argv, kDeveloperTimeoutSeconds, stdout_path, dir.path(), dir.file("log.txt")); !s.is_ok()) {
    return Status(s.code(), "camera: " + s.message());
  }
  cv::Mat picture = cv::imread(output, cv::IMREAD_COLOR);
  if (picture.empty()) return internal_error("camera: " + program + " wrote no readable picture");
  if (picture.depth() != CV_8U) picture.convertTo(picture, CV_8U, 1.0 / 257.0);
  cv::cvtColor(picture, picture, cv::COLOR_BGR2RGB);
  if (picture.cols != raw.width || picture.rows != raw.height) {
    // RawTherapee leaves out a border its demosaic cannot fill: put the picture back where it
    // was on the sensor and repeat its edge, so the camera never shifts or rescales the scene.
    const int left = (raw.width - picture.cols) / 2, top = (raw.height - picture.rows) / 2;
    if (left < 0 || top < 0 || left > 16 || top > 16) {
      return internal_error("camera: " + program + " developed " + std::to_string(picture.cols) + "x" +
                            std::to_string(picture.rows) + " from a " + std::to_string(raw.width) + "x" +
                            std::to_string(raw.height) + " mosaic");
    }
    cv::copyMakeBorder(picture, picture, top, raw.height - picture.rows - top, left, raw.width - picture.cols - left,
                       cv::BORDER_REPLICATE);
  }
  // The developer did its own demosaic, colour, gamma and tone: only denoise and sharpen remain.
  CameraOptions finishing = options;
  finishing.tone_curve = false;
  return image_from_mat(finish_isp(picture, finishing));
}

}  // namespace detail
}  // namespace edgefleet
