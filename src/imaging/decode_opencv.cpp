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
  if (probe_dimensions(bytes, format, &width, &height)) {
    if (Status s = check_dimensions(width, height, origin, options.limits); !s.is_ok()) return s;
  }
  if (format == ImageFormat::kJpeg && !jpeg_is_complete(bytes)) {
    return corrupt(origin + ": truncated JPEG (no end-of-image marker)");
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
  cv::Mat rgb;
  switch (decoded.channels()) {
    case 1: rgb = decoded; break;
    case 3: cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(decoded, rgb, cv::COLOR_BGRA2RGB); break;
    default: return unsupported(origin + ": " + std::to_string(decoded.channels()) + " channels");
  }
  return image_from_mat(rgb);
}

}  // namespace edgefleet::detail
