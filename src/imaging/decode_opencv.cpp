#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "imaging/decoders.h"
#include "imaging/opencv_image.h"

namespace edgefleet::detail {

Expected<Image> decode_opencv(const Bytes& bytes, const std::string& origin, const DecodeOptions& options) {
  // OpenCV checks sizes only against its own 2^30-pixel ceiling and shows a partly grey
  // picture for a truncated JPEG: check both first.
  const ImageFormat format = sniff_image_format(bytes);
  long long width = 0, height = 0;
  if (format == ImageFormat::kJpeg) {
    int w = 0, h = 0;
    const bool complete = walk_jpeg_markers(bytes, &w, &h);
    if (w > 0 || h > 0) {
      if (Status s = check_dimensions(w, h, origin, options.limits); !s.is_ok()) return s;
    }
    if (!complete) return corrupt(origin + ": truncated JPEG (no end-of-image marker)");
  } else if (probe_dimensions(bytes, format, &width, &height)) {
    if (Status s = check_dimensions(width, height, origin, options.limits); !s.is_ok()) return s;
  }
  cv::Mat decoded;
  try {
    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8U, const_cast<std::uint8_t*>(bytes.data()));
    int flags = cv::IMREAD_ANYCOLOR | cv::IMREAD_ANYDEPTH;
    if (!options.apply_orientation) flags |= cv::IMREAD_IGNORE_ORIENTATION;
    decoded = cv::imdecode(buffer, flags);
  } catch (const cv::Exception& e) {
    if (e.err.find("CV_IO_MAX_IMAGE_PIXELS") != std::string::npos) {
      return invalid_argument(origin + ": image is over OpenCV's pixel limit");
    }
    return corrupt(origin + ": cannot decode image (" + e.err + ")");
  }
  if (decoded.empty()) return corrupt(origin + ": not a decodable image (truncated or unknown format)");
  if (Status s = check_dimensions(decoded.cols, decoded.rows, origin, options.limits); !s.is_ok()) return s;
  if (decoded.depth() == CV_16U) decoded.convertTo(decoded, CV_8U, 1.0 / 257.0);
  if (decoded.depth() != CV_8U) return unsupported(origin + ": pixel depth other than 8 or 16 bits");
  if (decoded.channels() == 1) return image_from_mat(decoded);
  if (decoded.channels() != 3 && decoded.channels() != 4) {
    return unsupported(origin + ": " + std::to_string(decoded.channels()) + " channels");
  }
  Image image;
  image.width = decoded.cols;
  image.height = decoded.rows;
  image.channels = 3;
  image.pixels.resize(static_cast<std::size_t>(image.width) * image.height * 3);
  cv::Mat rgb = mat_view(image);  // converted straight into the image's buffer
  cv::cvtColor(decoded, rgb, decoded.channels() == 3 ? cv::COLOR_BGR2RGB : cv::COLOR_BGRA2RGB);
  return image;
}

}  // namespace edgefleet::detail
