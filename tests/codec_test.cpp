// Decoders and encoders: knobs matter where they should, not where they should not, and
// untrusted bytes get a typed error, never a crash.
#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>
#include <jpeglib.h>
#include <libexif/exif-data.h>
#include <opencv2/imgcodecs.hpp>

#include "edgefleet/decode.h"
#include "edgefleet/encode.h"
#include "test_support.h"

namespace edgefleet {
namespace {

using testing::make_test_photo;
using testing::max_abs_diff;
using testing::mean_abs_diff;
using Bytes = std::vector<std::uint8_t>;

Bytes jpeg_of(const Image& image, int quality = 90, ChromaSubsampling subsampling = ChromaSubsampling::k420) {
  EncodeOptions options;
  options.quality = quality;
  options.subsampling = subsampling;
  return encode_image(image, options).value();
}

Bytes encode_as(const Image& image, ImageFormat format, bool lossless = false) {
  EncodeOptions options;
  options.format = format;
  options.lossless = lossless;
  return encode_image(image, options).value();
}

Image decode_with(const Bytes& bytes, Decoder decoder, DctMethod dct = DctMethod::kIslow, bool fancy = true) {
  DecodeOptions options;
  options.decoder = decoder;
  options.dct = dct;
  options.fancy_upsampling = fancy;
  return decode_image(bytes, "test", options).value();
}

Status decode_status(const Bytes& bytes, Decoder decoder, DecodeLimits limits = {}) {
  DecodeOptions options;
  options.decoder = decoder;
  options.limits = limits;
  return decode_image(bytes, "test", options).status();
}

// A JPEG with an APP1 EXIF segment carrying `orientation`, written with libexif.
Bytes with_exif_orientation(const Bytes& jpeg, int orientation) {
  ExifData* data = exif_data_new();
  exif_data_set_byte_order(data, EXIF_BYTE_ORDER_INTEL);
  ExifEntry* entry = exif_entry_new();
  exif_content_add_entry(data->ifd[EXIF_IFD_0], entry);
  exif_entry_initialize(entry, EXIF_TAG_ORIENTATION);
  exif_set_short(entry->data, EXIF_BYTE_ORDER_INTEL, static_cast<ExifShort>(orientation));
  unsigned char* payload = nullptr;
  unsigned int size = 0;
  exif_data_save_data(data, &payload, &size);
  Bytes out(jpeg.begin(), jpeg.begin() + 2);  // SOI
  out.push_back(0xFF);
  out.push_back(0xE1);
  out.push_back(static_cast<std::uint8_t>((size + 2) >> 8));
  out.push_back(static_cast<std::uint8_t>((size + 2) & 0xFF));
  out.insert(out.end(), payload, payload + size);
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  std::free(payload);
  exif_entry_unref(entry);
  exif_data_unref(data);
  return out;
}

// An Adobe (inverted) CMYK JPEG whose stored samples are (r, g, b, 255): decodes to (r, g, b).
Bytes cmyk_jpeg_of(const Image& rgb) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr errors;
  cinfo.err = jpeg_std_error(&errors);
  jpeg_create_compress(&cinfo);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &out, &size);
  cinfo.image_width = rgb.width;
  cinfo.image_height = rgb.height;
  cinfo.input_components = 4;
  cinfo.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 95, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<std::uint8_t> row(rgb.width * 4);
  while (cinfo.next_scanline < cinfo.image_height) {
    for (int x = 0; x < rgb.width; ++x) {
      for (int c = 0; c < 3; ++c) row[x * 4 + c] = rgb.at(cinfo.next_scanline, x, c);
      row[x * 4 + 3] = 255;
    }
    JSAMPROW pointer = row.data();
    jpeg_write_scanlines(&cinfo, &pointer, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  Bytes bytes(out, out + size);
  std::free(out);
  return bytes;
}

Bytes opencv_png(const cv::Mat& mat) {
  std::vector<std::uint8_t> bytes;
  cv::imencode(".png", mat, bytes);
  return bytes;
}

const Decoder kJpegDecoders[] = {Decoder::kTurboJpeg, Decoder::kOpenCv, Decoder::kMagick, Decoder::kVips};
const Decoder kPngDecoders[] = {Decoder::kLibPng, Decoder::kOpenCv, Decoder::kMagick, Decoder::kVips};

TEST(ImageFormat, SniffRecognisesEachEncodedFormat) {
  const Image photo = make_test_photo(32, 24);
  EXPECT_EQ(sniff_image_format(jpeg_of(photo)), ImageFormat::kJpeg);
  EXPECT_EQ(sniff_image_format(encode_as(photo, ImageFormat::kPng)), ImageFormat::kPng);
  EXPECT_EQ(sniff_image_format(encode_as(photo, ImageFormat::kWebp)), ImageFormat::kWebp);
  EXPECT_EQ(sniff_image_format(Bytes{'h', 'e', 'l', 'l', 'o'}), ImageFormat::kUnknown);
  EXPECT_EQ(sniff_image_format(Bytes{}), ImageFormat::kUnknown);
}

TEST(JpegDecode, DctMethodsGiveDifferentPixels) {
  const Bytes jpeg = jpeg_of(make_test_photo(96, 64), 85);
  const Image islow = decode_with(jpeg, Decoder::kTurboJpeg, DctMethod::kIslow);
  const Image ifast = decode_with(jpeg, Decoder::kTurboJpeg, DctMethod::kIfast);
  const Image fl = decode_with(jpeg, Decoder::kTurboJpeg, DctMethod::kFloat);
  EXPECT_GT(max_abs_diff(islow, ifast), 0);
  EXPECT_GT(max_abs_diff(islow, fl), 0);
  // Different arithmetic, same picture: the differences are rounding-sized.
  EXPECT_LT(mean_abs_diff(islow, ifast), 2.0);
  EXPECT_LT(mean_abs_diff(islow, fl), 1.0);
}

TEST(JpegDecode, TheSameDecodeTwiceIsBitIdentical) {
  const Bytes jpeg = jpeg_of(make_test_photo(96, 64));
  for (Decoder decoder : kJpegDecoders) {
    EXPECT_EQ(decode_with(jpeg, decoder).pixels, decode_with(jpeg, decoder).pixels) << decoder_name(decoder);
  }
}

TEST(JpegDecode, UpsamplingMattersOnlyWhenChromaIsSubsampled) {
  const Image photo = make_test_photo(96, 64);
  const Bytes full = jpeg_of(photo, 90, ChromaSubsampling::k444);
  const Bytes sub = jpeg_of(photo, 90, ChromaSubsampling::k420);
  EXPECT_EQ(decode_with(full, Decoder::kTurboJpeg, DctMethod::kIslow, true).pixels,
            decode_with(full, Decoder::kTurboJpeg, DctMethod::kIslow, false).pixels);
  EXPECT_NE(decode_with(sub, Decoder::kTurboJpeg, DctMethod::kIslow, true).pixels,
            decode_with(sub, Decoder::kTurboJpeg, DctMethod::kIslow, false).pixels);
}

TEST(JpegDecode, EveryLibraryReadsTheSameJpegAlike) {
  const Bytes jpeg = jpeg_of(make_test_photo(96, 64));
  const Image reference = decode_with(jpeg, Decoder::kTurboJpeg);
  for (Decoder decoder : kJpegDecoders) {
    const Image decoded = decode_with(jpeg, decoder);
    ASSERT_EQ(decoded.width, 96);
    ASSERT_EQ(decoded.height, 64);
    ASSERT_EQ(decoded.channels, 3);
    EXPECT_LT(mean_abs_diff(decoded, reference), 1.5) << decoder_name(decoder);
  }
  // OpenCV links the same libjpeg-turbo with the same defaults: identical pixels.
  EXPECT_EQ(decode_with(jpeg, Decoder::kOpenCv).pixels, reference.pixels);
}

TEST(JpegEncode, QualityAndSubsamplingChangeTheFile) {
  const Image photo = make_test_photo(96, 64);
  EXPECT_LT(jpeg_of(photo, 50).size(), jpeg_of(photo, 100).size());
  const Image q444 = decode_with(jpeg_of(photo, 95, ChromaSubsampling::k444), Decoder::kTurboJpeg);
  const Image q420 = decode_with(jpeg_of(photo, 95, ChromaSubsampling::k420), Decoder::kTurboJpeg);
  EXPECT_LT(mean_abs_diff(q444, photo), mean_abs_diff(q420, photo));  // the red disc's edge keeps its colour
}

TEST(PngCodec, RoundTripIsLosslessForEveryDecoder) {
  for (int channels : {1, 3}) {
    const Image photo = make_test_photo(33, 17, channels);
    const Bytes png = encode_as(photo, ImageFormat::kPng);
    for (Decoder decoder : kPngDecoders) {
      const Image decoded = decode_with(png, decoder);
      EXPECT_EQ(decoded.channels, channels) << decoder_name(decoder);
      EXPECT_EQ(decoded.pixels, photo.pixels) << "decoder " << decoder_name(decoder) << ", " << channels << " ch";
    }
  }
}

TEST(WebpCodec, LosslessIsExactAndLossyIsClose) {
  const Image photo = make_test_photo(64, 48);
  EXPECT_EQ(decode_with(encode_as(photo, ImageFormat::kWebp, true), Decoder::kLibWebp).pixels, photo.pixels);
  const Image lossy = decode_with(encode_as(photo, ImageFormat::kWebp), Decoder::kLibWebp);
  EXPECT_GT(max_abs_diff(lossy, photo), 0);
  EXPECT_LT(mean_abs_diff(lossy, photo), 8.0);
}

TEST(HeifCodec, RoundTripIsCloseToTheSource) {
  const Image photo = make_test_photo(64, 48);
  EncodeOptions options;
  options.format = ImageFormat::kHeif;
  auto heif = encode_image(photo, options);
  if (!heif && heif.status().code() == StatusCode::kUnsupported) GTEST_SKIP() << heif.status().to_string();
  ASSERT_TRUE(heif) << heif.status().to_string();
  EXPECT_EQ(sniff_image_format(*heif), ImageFormat::kHeif);
  const Image decoded = decode_with(*heif, Decoder::kLibHeif);
  EXPECT_EQ(decoded.width, 64);
  EXPECT_EQ(decoded.height, 48);
  EXPECT_LT(mean_abs_diff(decoded, photo), 10.0);
}

TEST(HeifCodec, TheX265PresetChangesTheEncodingAndAnUnknownOneIsRefused) {
  const Image photo = make_test_photo(64, 48);
  EncodeOptions options;
  options.format = ImageFormat::kHeif;
  options.quality = 90;
  auto slow = encode_image(photo, options);
  if (!slow && slow.status().code() == StatusCode::kUnsupported) GTEST_SKIP() << slow.status().to_string();
  ASSERT_TRUE(slow) << slow.status().to_string();
  options.preset = "ultrafast";
  auto fast = encode_image(photo, options);
  ASSERT_TRUE(fast) << fast.status().to_string();
  EXPECT_NE(*fast, *slow);  // the preset reaches x265: a different bitstream
  EXPECT_LT(mean_abs_diff(decode_with(*fast, Decoder::kLibHeif), photo), 10.0);
  options.preset = "quick";
  EXPECT_EQ(encode_image(photo, options).status().code(), StatusCode::kInvalidArgument);
  options.format = ImageFormat::kJpeg;
  options.preset = "fast";
  EXPECT_EQ(encode_image(photo, options).status().code(), StatusCode::kInvalidArgument);
}

TEST(DecodeSafety, TruncatedJpegIsCorruptForEveryDecoder) {
  Bytes jpeg = jpeg_of(make_test_photo(96, 64));
  jpeg.resize(jpeg.size() / 2);
  for (Decoder decoder : kJpegDecoders) {
    const Status status = decode_status(jpeg, decoder);
    EXPECT_EQ(status.code(), StatusCode::kCorrupt) << decoder_name(decoder) << ": " << status.to_string();
  }
}

TEST(DecodeSafety, TruncatedPngAndWebpAreCorrupt) {
  const Image photo = make_test_photo(64, 48);
  for (auto [format, decoder] : {std::pair{ImageFormat::kPng, Decoder::kLibPng}, std::pair{ImageFormat::kWebp, Decoder::kLibWebp}}) {
    Bytes bytes = encode_as(photo, format);
    bytes.resize(bytes.size() / 2);
    EXPECT_EQ(decode_status(bytes, decoder).code(), StatusCode::kCorrupt) << image_format_name(format);
  }
}

TEST(DecodeSafety, GarbageAndEmptyInputAreCorrupt) {
  Bytes garbage(4096);
  for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<std::uint8_t>(i * 7919 % 251);
  for (Decoder decoder : {Decoder::kAuto, Decoder::kOpenCv, Decoder::kMagick, Decoder::kVips}) {
    EXPECT_EQ(decode_status(garbage, decoder).code(), StatusCode::kCorrupt);
    EXPECT_EQ(decode_status(Bytes{}, decoder).code(), StatusCode::kCorrupt);
  }
  // A JPEG signature followed by garbage.
  Bytes fake = {0xFF, 0xD8, 0xFF, 0xE0};
  fake.insert(fake.end(), garbage.begin(), garbage.end());
  EXPECT_EQ(decode_status(fake, Decoder::kTurboJpeg).code(), StatusCode::kCorrupt);
}

TEST(DecodeSafety, AFormatSpecificDecoderSaysWhatItReads) {
  const Status status = decode_status(jpeg_of(make_test_photo(8, 8)), Decoder::kLibPng);
  EXPECT_EQ(status.code(), StatusCode::kUnsupported);
  EXPECT_NE(status.message().find("png only"), std::string::npos) << status.message();
}

TEST(DecodeSafety, AJpegHeaderClaimingAHugeImageIsRefusedBeforeDecoding) {
  Bytes jpeg = jpeg_of(make_test_photo(16, 16));
  // Patch the SOF0 frame header's height and width to 60000 x 60000 (3.6 gigapixels).
  for (std::size_t i = 2; i + 8 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) {
      jpeg[i + 5] = 0xEA, jpeg[i + 6] = 0x60, jpeg[i + 7] = 0xEA, jpeg[i + 8] = 0x60;
      break;
    }
  }
  for (Decoder decoder : kJpegDecoders) {
    const Status status = decode_status(jpeg, decoder);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << decoder_name(decoder) << ": " << status.to_string();
  }
}

TEST(DecodeSafety, LimitsOnPixelsAndBytesAreEnforced) {
  const Bytes png = encode_as(make_test_photo(64, 64), ImageFormat::kPng);
  DecodeLimits small_pixels;
  small_pixels.max_pixels = 1000;
  for (Decoder decoder : kPngDecoders) {
    EXPECT_EQ(decode_status(png, decoder, small_pixels).code(), StatusCode::kInvalidArgument);
  }
  DecodeLimits small_file;
  small_file.max_bytes = png.size() - 1;
  const Status status = decode_status(png, Decoder::kAuto, small_file);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("bytes"), std::string::npos);
}

TEST(DecodeSafety, OneByOneImagesDecode) {
  const Image dot = make_test_photo(1, 1);
  for (ImageFormat format : {ImageFormat::kJpeg, ImageFormat::kPng, ImageFormat::kWebp}) {
    const Image decoded = decode_image(encode_as(dot, format), "dot").value();
    EXPECT_EQ(decoded.width, 1);
    EXPECT_EQ(decoded.height, 1);
  }
}

TEST(DecodePolicy, SixteenBitPngIsScaledToEightBits) {
  cv::Mat deep(8, 8, CV_16UC3, cv::Scalar(257 * 10, 257 * 128, 65535));  // BGR
  const Bytes png = opencv_png(deep);
  for (Decoder decoder : kPngDecoders) {
    const Image decoded = decode_with(png, decoder);
    ASSERT_EQ(decoded.channels, 3);
    EXPECT_NEAR(decoded.at(0, 0, 0), 255, 1) << decoder_name(decoder);
    EXPECT_NEAR(decoded.at(0, 0, 1), 128, 1) << decoder_name(decoder);
    EXPECT_NEAR(decoded.at(0, 0, 2), 10, 1) << decoder_name(decoder);
  }
}

TEST(DecodePolicy, AlphaIsDroppedNotComposited) {
  cv::Mat bgra(4, 4, CV_8UC4, cv::Scalar(30, 60, 90, 0));  // fully transparent
  for (Decoder decoder : kPngDecoders) {
    const Image decoded = decode_with(opencv_png(bgra), decoder);
    ASSERT_EQ(decoded.channels, 3) << decoder_name(decoder);
    EXPECT_EQ(decoded.at(1, 1, 0), 90) << decoder_name(decoder);
    EXPECT_EQ(decoded.at(1, 1, 2), 30) << decoder_name(decoder);
  }
}

TEST(DecodePolicy, GrayJpegStaysGray) {
  const Bytes jpeg = jpeg_of(make_test_photo(32, 32, 1));
  for (Decoder decoder : kJpegDecoders) EXPECT_EQ(decode_with(jpeg, decoder).channels, 1) << decoder_name(decoder);
}

TEST(DecodePolicy, CmykJpegBecomesRgb) {
  const Image photo = make_test_photo(32, 24);
  const Bytes jpeg = cmyk_jpeg_of(photo);
  for (Decoder decoder : kJpegDecoders) {
    const Image decoded = decode_with(jpeg, decoder);
    ASSERT_EQ(decoded.channels, 3) << decoder_name(decoder);
    // libvips converts CMYK through an ICC profile (lcms), the others by the naive formula.
    const double tolerance = decoder == Decoder::kVips ? 30.0 : 6.0;
    EXPECT_LT(mean_abs_diff(decoded, photo), tolerance) << decoder_name(decoder);
  }
}

TEST(DecodePolicy, ExifOrientationIsAppliedUnlessIgnored) {
  const Bytes jpeg = with_exif_orientation(jpeg_of(make_test_photo(40, 20)), 6);  // rotate 90 clockwise
  for (Decoder decoder : kJpegDecoders) {
    DecodeOptions options;
    options.decoder = decoder;
    const Image upright = decode_image(jpeg, "exif", options).value();
    EXPECT_EQ(upright.width, 20) << decoder_name(decoder);
    EXPECT_EQ(upright.height, 40) << decoder_name(decoder);
    options.apply_orientation = false;
    const Image stored = decode_image(jpeg, "exif", options).value();
    EXPECT_EQ(stored.width, 40) << decoder_name(decoder);
  }
}

TEST(Encode, BadInputIsRefused) {
  EXPECT_EQ(encode_image(Image{}, EncodeOptions{}).status().code(), StatusCode::kInvalidArgument);
  EncodeOptions bad_quality;
  bad_quality.quality = 101;
  EXPECT_EQ(encode_image(make_test_photo(4, 4), bad_quality).status().code(), StatusCode::kInvalidArgument);
  EncodeOptions bmp;
  bmp.format = ImageFormat::kBmp;
  EXPECT_EQ(encode_image(make_test_photo(4, 4), bmp).status().code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace edgefleet
