#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "edgefleet/pipeline.h"
#include "test_support.h"

namespace edgefleet {
namespace {

using testing::make_test_photo;
using testing::max_abs_diff;
using testing::mean_abs_diff;

std::vector<std::uint8_t> source_jpeg() {
  EncodeOptions options;
  options.quality = 95;
  return encode_image(make_test_photo(160, 120), options).value();
}

TEST(PipelineSpec, ParsesTheDocumentedExampleAndPrintsItCanonically) {
  const std::string spec = "decode:turbojpeg,dct=ifast|resize:opencv,linear,256|crop:center,224|color:bt709,limited";
  const Pipeline pipeline = parse_pipeline(spec).value();
  ASSERT_EQ(pipeline.stages.size(), 4u);
  EXPECT_EQ(std::get<DecodeStage>(pipeline.stages[0]).options.dct, DctMethod::kIfast);
  EXPECT_EQ(std::get<ResizeStage>(pipeline.stages[1]).options.size.shorter_side, 256);
  EXPECT_EQ(std::get<CropStage>(pipeline.stages[2]).options.width, 224);
  EXPECT_EQ(std::get<ColorStage>(pipeline.stages[3]).options.range, YuvRange::kLimited);
  EXPECT_EQ(pipeline_to_string(pipeline), spec);
}

TEST(PipelineSpec, DefaultsAreLeftOutSoEqualPipelinesPrintEqually) {
  const Pipeline explicit_defaults =
      parse_pipeline("decode:turbojpeg,dct=islow,upsampling=fancy | encode:jpeg,subsampling=420 | color:bt601,full,chroma=444")
          .value();
  EXPECT_EQ(pipeline_to_string(explicit_defaults), "decode:turbojpeg|encode:jpeg|color:bt601,full");
}

TEST(PipelineSpec, EveryStageKindRoundTripsThroughStringAndJson) {
  const std::string spec =
      "camera:libraw,bayer=bggr,demosaic=ahd,wb=grayworld,gamma=bt709,denoise=3,sharpen=0.5,shot=0.001,read=0.0001,seed=4"
      "|encode:webp,quality=80|decode:libwebp|resize:torch,bilinear,300x200,antialias=1|crop:center,0.875"
      "|encode:jpeg,quality=50,subsampling=444,dct=float|decode:magick,orientation=ignore|resize:vips,lanczos3,64"
      "|resize:magick,catrom,32x32|color:bt709,full,chroma=420,rounding=float,order=bgr|encode:heif,lossless=1|encode:heif,quality=90,preset=fast"
      "|encode:png";
  const Pipeline pipeline = parse_pipeline(spec).value();
  EXPECT_EQ(pipeline_to_string(pipeline), spec);
  const nlohmann::json json = pipeline_to_json(pipeline);
  EXPECT_EQ(json[0]["stage"], "camera");
  EXPECT_EQ(json[0]["demosaic"], "ahd");
  EXPECT_EQ(pipeline_to_string(pipeline_from_json(json).value()), spec);
}

TEST(PipelineSpec, ScreenAndMeasuredSensorStagesRoundTrip) {
  const std::string spec =
      "screen:scale=0.02,shift=0.01,rotate=1,keystone=0.02,blur=0.001,exposure=0.33,seed=3"
      "|camera:opencv,sensor=2,demosaic=ea,wb=grayworld,nlf=S6,iso=400,photosites=3024,fill=0.8,seed=3|encode:jpeg,quality=95";
  const Pipeline pipeline = parse_pipeline(spec).value();
  EXPECT_EQ(pipeline_to_string(pipeline), spec);
  EXPECT_EQ(pipeline_to_string(pipeline_from_json(pipeline_to_json(pipeline)).value()), spec);
  const CameraOptions& camera = std::get<CameraStage>(pipeline.stages[1]).options;
  EXPECT_DOUBLE_EQ(camera.shot_noise, 0.001774);  // SIDD's S6 at ISO 400
  EXPECT_DOUBLE_EQ(camera.read_noise, 0.000002);
  EXPECT_EQ(pipeline_to_string(parse_pipeline("screen").value()), "screen");
}

// A Raspberry Pi camera as libcamera's imx219.json measured it: named in the spec, its noise
// profile converted to a noise level function (std 3.67 sqrt(mean) over 65535 - 4096 levels).
TEST(PipelineSpec, LibcameraSensorsAreNamedAndTheirNoiseProfileIsConverted) {
  const std::string spec = "camera:libraw,sensor=imx219,nlf=imx219,iso=100";
  const Pipeline pipeline = parse_pipeline(spec).value();
  EXPECT_EQ(pipeline_to_string(pipeline), spec);
  const CameraOptions& camera = std::get<CameraStage>(pipeline.stages[0]).options;
  EXPECT_EQ(camera.sensor, kUnprocessingSensors);
  EXPECT_NEAR(camera.shot_noise, 3.67 * 3.67 / 61439.0, 1e-12);
  EXPECT_DOUBLE_EQ(camera.read_noise, 0.0);
}

TEST(PipelineSpec, MeasuredNoiseErrorsNameWhatWasMeasured) {
  auto error = [](const std::string& spec) { return parse_pipeline(spec).status().message(); };
  EXPECT_NE(error("camera:opencv,nlf=XX,iso=100").find("measured: IP, GP, S6, N6, G4"), std::string::npos);
  EXPECT_NE(error("camera:opencv,nlf=GP,iso=400").find("GP at ISO 100, 800, not 400"), std::string::npos);
  EXPECT_NE(error("camera:opencv,nlf=GP").find("nlf and iso go together"), std::string::npos);
  EXPECT_NE(error("camera:opencv,nlf=GP,iso=100,shot=0.1").find("not both"), std::string::npos);
  EXPECT_NE(error("camera:opencv,sensor=9").find("sensor '9' is not 0..3 (unprocessing's matrices) or a libcamera sensor (imx219)"),
            std::string::npos);
  EXPECT_NE(error("camera:opencv,nlf=imx219,iso=400").find("analogue gain 1 (ISO 100)"), std::string::npos);
  EXPECT_NE(error("camera:opencv,nlf=XX,iso=100").find("imx219 (libcamera)"), std::string::npos);
  EXPECT_NE(error("screen:blur=-1").find("blur -1 is out of range"), std::string::npos);
}

TEST(PipelineParts, CaptureEndsWithTheFirstEncodeOrTheLastCameraStage) {
  auto parts = [](const std::string& spec) {
    const PipelineParts p = split_capture(parse_pipeline(spec).value());
    return pipeline_to_string(p.capture) + " || " + pipeline_to_string(p.deployment);
  };
  EXPECT_EQ(parts("screen|camera:opencv|color:bt709,limited|encode:jpeg|decode:turbojpeg|resize:opencv,linear,model"),
            "screen|camera:opencv|color:bt709,limited|encode:jpeg || decode:turbojpeg|resize:opencv,linear,model");
  EXPECT_EQ(parts("encode:jpeg,quality=95|decode:opencv"), "encode:jpeg,quality=95 || decode:opencv");
  EXPECT_EQ(parts("camera:libraw|resize:opencv,linear,32"), "camera:libraw || resize:opencv,linear,32");
  EXPECT_EQ(parts("decode:opencv|crop:center,0.875"), " || decode:opencv|crop:center,0.875");
  const Pipeline whole = parse_pipeline("camera:opencv|encode:png|decode:libpng").value();
  const PipelineParts p = split_capture(whole);
  EXPECT_EQ(pipeline_to_string(concatenate(p.capture, p.deployment)), pipeline_to_string(whole));
}

TEST(PipelineSpec, JsonAcceptsNumbersAndBooleans) {
  const auto json = nlohmann::json::parse(
      R"([{"stage": "encode", "format": "jpeg", "quality": 85}, {"stage": "resize", "library": "torch",
          "method": "bicubic", "size": 64, "antialias": true}])");
  EXPECT_EQ(pipeline_to_string(pipeline_from_json(json).value()), "encode:jpeg,quality=85|resize:torch,bicubic,64,antialias=1");
  EXPECT_EQ(pipeline_to_string(pipeline_from_json(nlohmann::json("crop:center,10")).value()), "crop:center,10");
}

TEST(PipelineSpec, ErrorsNameTheOffendingTokenAndTheAllowedValues) {
  struct Case {
    std::string spec;
    std::vector<std::string> expected;
  };
  const Case cases[] = {
      {"decode:turbojpeg|blur:3", {"stage 2", "blur", "allowed: screen, camera, encode, decode, resize, crop, color"}},
      {"resize:opencv,fast,256", {"method 'fast'", "nearest, linear, cubic, area, lanczos4"}},
      {"resize:pillow,linear,256", {"library 'pillow'", "opencv, vips, magick, torch"}},
      {"decode:turbojpeg,dct=fastest", {"dct 'fastest'", "islow, ifast, float"}},
      {"encode:jpeg,quality=120", {"quality 120", "[1, 100]"}},
      {"encode:jpeg,quality=high", {"quality 'high' is not a number"}},
      {"resize:opencv,linear", {"missing size"}},
      {"crop:center,224,225", {"unexpected value '225'"}},
      {"color:bt2020,full", {"matrix 'bt2020'", "bt601, bt709"}},
      {"decode:opencv,dct=ifast", {"turbojpeg options"}},
      {"resize:opencv,linear,0", {"size '0'"}},
      {"encode:png,quality=80", {"png is lossless"}},
      {"encode:jpeg,preset=fast", {"preset is a HEIF (x265) option"}},
      {"encode:heif,preset=quick", {"preset 'quick'", "ultrafast, superfast"}},
      {"camera:opencv,demosaic=ahd", {"demosaic 'ahd'", "bilinear, vng, ea"}},
      {"resize:opencv,linear,256,sharp=1", {"unknown option 'sharp'", "antialias"}},
      {"decode:auto||crop:center,4", {"stage 2", "empty stage"}},
  };
  for (const Case& c : cases) {
    const Status status = parse_pipeline(c.spec).status();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.spec;
    for (const auto& part : c.expected) EXPECT_NE(status.message().find(part), std::string::npos) << status.message();
  }
}

TEST(PipelineRun, ProducesTheModelInputSizeAndIsDeterministic) {
  const Pipeline pipeline = parse_pipeline("decode:turbojpeg|resize:opencv,linear,64|crop:center,56").value();
  const Image a = run_pipeline(pipeline, source_jpeg(), "photo").value();
  EXPECT_EQ(a.width, 56);
  EXPECT_EQ(a.height, 56);
  EXPECT_EQ(a.pixels, run_pipeline(pipeline, source_jpeg(), "photo").value().pixels);
}

TEST(PipelineRun, DeviceKnobsChangeTheOutputOnlyWhereTheyShould) {
  const auto run = [&](const std::string& spec) { return run_pipeline(parse_pipeline(spec).value(), source_jpeg(), "photo").value(); };
  const Image reference = run("decode:turbojpeg|resize:opencv,linear,64");
  EXPECT_GT(max_abs_diff(reference, run("decode:turbojpeg,dct=ifast|resize:opencv,linear,64")), 0);
  EXPECT_GT(max_abs_diff(reference, run("decode:turbojpeg|resize:opencv,area,64")), 0);
  EXPECT_GT(max_abs_diff(reference, run("encode:jpeg,quality=50|decode:turbojpeg|resize:opencv,linear,64")), 0);
  // Lossless re-encoding changes nothing.
  EXPECT_EQ(reference.pixels, run("decode:turbojpeg|encode:png|decode:libpng|resize:opencv,linear,64").pixels);
  EXPECT_EQ(reference.pixels, run("decode:turbojpeg|encode:webp,lossless=1|resize:opencv,linear,64").pixels);
}

TEST(PipelineRun, PixelStagesDecodeEncodedInputThemselves) {
  const Image implicit = run_pipeline(parse_pipeline("resize:opencv,linear,32").value(), source_jpeg(), "photo").value();
  const Image explicit_ = run_pipeline(parse_pipeline("decode:auto|resize:opencv,linear,32").value(), source_jpeg(), "photo").value();
  EXPECT_EQ(implicit.pixels, explicit_.pixels);
  const Image none = run_pipeline(Pipeline{}, source_jpeg(), "photo").value();
  EXPECT_EQ(none.width, 160);
}

TEST(PipelineRun, DecodingPixelsIsAClearError) {
  const Status status = run_pipeline(parse_pipeline("decode:turbojpeg").value(), make_test_photo(8, 8), "mnist#3").status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("mnist#3"), std::string::npos);
  EXPECT_NE(status.message().find("put an encode stage before it"), std::string::npos);
}

TEST(PipelineRun, StageFailuresNameThePictureAndTheStage) {
  const Status status = run_pipeline(parse_pipeline("crop:center,500").value(), source_jpeg(), "cat.jpg").status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("cat.jpg"), std::string::npos);
  EXPECT_NE(status.message().find("crop:center,500"), std::string::npos);
  std::vector<std::uint8_t> broken = source_jpeg();
  broken.resize(broken.size() / 3);
  EXPECT_EQ(run_pipeline(parse_pipeline("resize:opencv,linear,32").value(), broken, "half.jpg").status().code(),
            StatusCode::kCorrupt);
}

TEST(PipelineRun, ACameraThenJpegDeviceLooksLikeTheSceneButIsNotIt) {
  const Image scene = make_test_photo(96, 64);
  const Image phone =
      run_pipeline(parse_pipeline("camera:opencv,demosaic=ea,shot=0.0005|encode:jpeg,quality=90|decode:turbojpeg").value(),
                   scene, "scene")
          .value();
  EXPECT_GT(max_abs_diff(phone, scene), 0);
  EXPECT_LT(mean_abs_diff(phone, scene), 15.0);
}

}  // namespace
}  // namespace edgefleet
