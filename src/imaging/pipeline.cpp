#include "edgefleet/pipeline.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

namespace edgefleet {
namespace {

// A stage as text fields: the common form of the spec string and the JSON object.
struct Fields {
  std::string kind;
  std::map<std::string, std::string> values;
};

struct StageSyntax {
  const char* kind;
  std::vector<std::string> positional;  // required, in order
  std::vector<std::string> named;       // optional
};

const std::vector<StageSyntax>& syntax() {
  static const std::vector<StageSyntax> kSyntax = {
      {"screen", {}, {"scale", "shift", "rotate", "keystone", "blur", "exposure", "seed"}},
      {"camera", {"isp"}, {"bayer", "sensor", "demosaic", "wb", "ccm", "gamma", "tone", "denoise", "sharpen", "shot", "read",
                           "nlf", "iso", "photosites", "fill", "oversample", "red_gain", "blue_gain", "seed"}},
      {"encode", {"format"}, {"quality", "subsampling", "dct", "lossless", "preset"}},
      {"decode", {"decoder"}, {"dct", "upsampling", "orientation"}},
      {"resize", {"library", "method", "size"}, {"antialias"}},
      {"crop", {"mode", "size"}, {}},
      {"color", {"matrix", "range"}, {"chroma", "rounding", "order"}},
  };
  return kSyntax;
}

std::string join(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
}

std::vector<std::string> split(const std::string& s, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream stream(s);
  while (std::getline(stream, part, separator)) parts.push_back(trim(part));
  if (!s.empty() && s.back() == separator) parts.push_back("");
  return parts;
}

// Reads one stage's fields; `where` names it in errors.
class FieldReader {
 public:
  FieldReader(const Fields& fields, std::string where) : fields_(fields), where_(std::move(where)) {}

  bool has(const std::string& key) const { return fields_.values.count(key) != 0; }
  std::string text(const std::string& key, const std::string& fallback) const {
    const auto it = fields_.values.find(key);
    return it == fields_.values.end() ? fallback : it->second;
  }
  int choice(const std::string& key, const std::vector<std::string>& allowed, const std::string& fallback) const {
    const std::string value = text(key, fallback);
    const auto it = std::find(allowed.begin(), allowed.end(), value);
    if (it == allowed.end()) fail(key + " '" + value + "' is not one of: " + join(allowed));
    return static_cast<int>(it - allowed.begin());
  }
  double number(const std::string& key, double fallback, double low, double high) const {
    if (!has(key)) return fallback;
    const std::string value = text(key, "");
    double parsed = 0;
    std::size_t used = 0;
    try {
      parsed = std::stod(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != value.size() || !std::isfinite(parsed)) fail(key + " '" + value + "' is not a number");
    if (parsed < low || parsed > high) {
      fail(key + " " + value + " is out of range [" + format_number(low) + ", " + format_number(high) + "]");
    }
    return parsed;
  }
  int integer(const std::string& key, int fallback, int low, int high) const {
    const double value = number(key, fallback, low, high);
    if (value != std::floor(value)) fail(key + " '" + text(key, "") + "' is not a whole number");
    return static_cast<int>(value);
  }
  bool flag(const std::string& key, bool fallback) const { return choice(key, {"0", "1"}, fallback ? "1" : "0") == 1; }

  [[noreturn]] void fail(const std::string& message) const { throw Error(invalid_argument(where_ + ": " + message)); }

  static std::string format_number(double v) {
    std::ostringstream out;
    out << v;
    return out.str();
  }

 private:
  const Fields& fields_;
  std::string where_;
};

const std::vector<std::string> kDecoders = {"auto", "turbojpeg", "opencv", "magick", "vips", "libpng", "libwebp", "libheif", "libraw"};
const std::vector<std::string> kDct = {"islow", "ifast", "float"};
const std::vector<std::string> kSubsampling = {"444", "422", "420"};
const std::vector<std::string> kEncodeFormats = {"jpeg", "png", "webp", "heif"};
const std::vector<std::string> kResizeLibraries = {"opencv", "vips", "magick", "torch"};
const std::vector<std::string> kBayer = {"rggb", "bggr", "grbg", "gbrg"};
const std::vector<std::string> kIsp = {"opencv", "libraw", "dcraw", "darktable", "rawtherapee"};
const std::vector<std::string> kWhiteBalance = {"true", "grayworld", "none"};
const std::vector<std::string> kGamma = {"srgb", "bt709"};

ImageFormat encode_format(int index) {
  static const ImageFormat kFormats[] = {ImageFormat::kJpeg, ImageFormat::kPng, ImageFormat::kWebp, ImageFormat::kHeif};
  return kFormats[index];
}
int encode_format_index(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng: return 1;
    case ImageFormat::kWebp: return 2;
    case ImageFormat::kHeif: return 3;
    default: break;
  }
  return 0;
}

// "256" -> shorter side; "224x200" -> exact.
TargetSize parse_size(const FieldReader& reader, const std::string& value) {
  TargetSize size;
  if (value == "model") {
    size.from_model = true;
    return size;
  }
  const auto x = value.find('x');
  auto whole = [&](const std::string& text) {
    int parsed = 0;
    std::size_t used = 0;
    try {
      parsed = std::stoi(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text.size() || parsed < 1 || parsed > 65535) {
      reader.fail("size '" + value + "' is not N (shorter side), WxH or model, with sides in 1..65535");
    }
    return parsed;
  };
  if (x == std::string::npos) {
    size.shorter_side = whole(value);
  } else {
    size.width = whole(value.substr(0, x));
    size.height = whole(value.substr(x + 1));
  }
  return size;
}

std::string size_text(const TargetSize& size) {
  if (size.from_model) return "model";
  if (size.shorter_side > 0) return std::to_string(size.shorter_side);
  return std::to_string(size.width) + "x" + std::to_string(size.height);
}

Stage stage_from_fields(const Fields& fields, const std::string& where) {
  const FieldReader r(fields, where);
  if (fields.kind == "screen") {
    ScreenCaptureOptions o;
    o.scale = r.number("scale", 0, 0, 0.5);
    o.shift = r.number("shift", 0, 0, 0.5);
    o.rotate = r.number("rotate", 0, 0, 45);
    o.keystone = r.number("keystone", 0, 0, 0.5);
    o.blur = r.number("blur", 0, 0, 0.1);
    o.exposure = r.number("exposure", 0, 0, 4);
    o.seed = static_cast<std::uint64_t>(r.integer("seed", 0, 0, 1 << 30));
    return ScreenStage{o};
  }
  if (fields.kind == "camera") {
    CameraOptions o;
    o.isp = static_cast<IspEngine>(r.choice("isp", kIsp, ""));
    o.bayer = static_cast<BayerPattern>(r.choice("bayer", kBayer, "rggb"));
    const auto& methods = demosaic_methods(o.isp);
    o.demosaic = methods[r.choice("demosaic", methods, methods.front())];
    o.white_balance = static_cast<WhiteBalance>(r.choice("wb", kWhiteBalance, "true"));
    o.color_matrix = r.flag("ccm", true);
    o.gamma = static_cast<GammaCurve>(r.choice("gamma", kGamma, "srgb"));
    o.tone_curve = r.flag("tone", true);
    o.denoise = r.number("denoise", 0, 0, 100);
    o.sharpen = r.number("sharpen", 0, 0, 10);
    if (r.has("sensor")) {
      auto sensor = parse_sensor(r.text("sensor", "0"));
      if (!sensor) r.fail(sensor.status().message());
      o.sensor = *sensor;
    }
    o.photosites = r.integer("photosites", 0, 0, 100000);
    o.fill = r.number("fill", 1.0, 0.01, 1.0);
    o.oversample = r.integer("oversample", 1, 1, 16);
    o.shot_noise = r.number("shot", 0, 0, 1);
    o.read_noise = r.number("read", 0, 0, 1);
    if (r.has("nlf") || r.has("iso")) {
      if (!r.has("nlf") || !r.has("iso")) r.fail("nlf and iso go together (a measured camera at one ISO)");
      if (r.has("shot") || r.has("read")) r.fail("give either nlf and iso (a measured noise) or shot and read, not both");
      auto nlf = find_noise_level_function(r.text("nlf", ""), r.integer("iso", 0, 1, 1 << 20));
      if (!nlf) r.fail(nlf.status().message());
      o.shot_noise = nlf->beta1;
      o.read_noise = nlf->beta2;
      o.noise_level_function = *nlf;
    }
    o.red_gain = r.number("red_gain", o.red_gain, 0.1, 10);
    o.blue_gain = r.number("blue_gain", o.blue_gain, 0.1, 10);
    o.seed = static_cast<std::uint64_t>(r.integer("seed", 0, 0, 1 << 30));
    return CameraStage{o};
  }
  if (fields.kind == "encode") {
    EncodeOptions o;
    o.format = encode_format(r.choice("format", kEncodeFormats, ""));
    if (o.format == ImageFormat::kPng && (r.has("quality") || r.has("lossless"))) r.fail("png is lossless and has no quality");
    if (o.format != ImageFormat::kJpeg && (r.has("subsampling") || r.has("dct"))) {
      r.fail("subsampling and dct are JPEG options");
    }
    if (o.format == ImageFormat::kJpeg && r.has("lossless")) r.fail("lossless is a WebP and HEIF option");
    o.quality = r.integer("quality", 0, 1, 100);
    o.subsampling = static_cast<ChromaSubsampling>(r.choice("subsampling", kSubsampling, "420"));
    o.dct = static_cast<DctMethod>(r.choice("dct", kDct, "islow"));
    o.lossless = r.flag("lossless", false);
    if (r.has("preset")) {
      if (o.format != ImageFormat::kHeif) r.fail("preset is a HEIF (x265) option");
      o.preset = x265_presets()[r.choice("preset", x265_presets(), "")];
    }
    return EncodeStage{o};
  }
  if (fields.kind == "decode") {
    DecodeOptions o;
    o.decoder = static_cast<Decoder>(r.choice("decoder", kDecoders, ""));
    if (o.decoder != Decoder::kTurboJpeg && (r.has("dct") || r.has("upsampling"))) {
      r.fail("dct and upsampling are turbojpeg options");
    }
    o.dct = static_cast<DctMethod>(r.choice("dct", kDct, "islow"));
    o.fancy_upsampling = r.choice("upsampling", {"fancy", "simple"}, "fancy") == 0;
    o.apply_orientation = r.choice("orientation", {"apply", "ignore"}, "apply") == 0;
    return DecodeStage{o};
  }
  if (fields.kind == "resize") {
    ResizeOptions o;
    o.library = static_cast<ResizeLibrary>(r.choice("library", kResizeLibraries, ""));
    const auto& methods = resize_methods(o.library);
    o.method = methods[r.choice("method", methods, "")];
    o.size = parse_size(r, r.text("size", ""));
    o.antialias = r.flag("antialias", false);
    if (o.antialias && !(o.library == ResizeLibrary::kTorch && (o.method == "bilinear" || o.method == "bicubic"))) {
      r.fail("antialias applies to torch bilinear and bicubic only");
    }
    return ResizeStage{o};
  }
  if (fields.kind == "crop") {
    CropOptions o;
    r.choice("mode", {"center"}, "");
    const std::string size = r.text("size", "");
    if (size.find('.') != std::string::npos) {
      o.fraction = r.number("size", 0, 1e-6, 1.0);
    } else {
      const TargetSize parsed = parse_size(r, size);
      o.from_model = parsed.from_model;
      o.width = parsed.shorter_side > 0 ? parsed.shorter_side : parsed.width;
      o.height = parsed.shorter_side > 0 ? parsed.shorter_side : parsed.height;
    }
    return CropStage{o};
  }
  ColorConversionOptions o;  // color
  o.matrix = r.choice("matrix", {"bt601", "bt709"}, "") == 1 ? YuvMatrix::kBt709 : YuvMatrix::kBt601;
  o.range = r.choice("range", {"full", "limited"}, "") == 1 ? YuvRange::kLimited : YuvRange::kFull;
  o.chroma = static_cast<ChromaSubsampling>(r.choice("chroma", kSubsampling, "444"));
  o.round_to_uint8 = r.choice("rounding", {"uint8", "float"}, "uint8") == 0;
  o.swap_red_blue = r.choice("order", {"rgb", "bgr"}, "rgb") == 1;
  return ColorStage{o};
}

// Ordered (key, value) pairs: positional slots first, then options that differ from defaults.
std::vector<std::pair<std::string, std::string>> stage_fields(const Stage& stage, std::string* kind) {
  std::vector<std::pair<std::string, std::string>> f;
  auto number = [](double v) { return FieldReader::format_number(v); };
  if (const auto* s = std::get_if<ScreenStage>(&stage)) {
    const ScreenCaptureOptions& o = s->options;
    *kind = "screen";
    if (o.scale != 0) f.emplace_back("scale", number(o.scale));
    if (o.shift != 0) f.emplace_back("shift", number(o.shift));
    if (o.rotate != 0) f.emplace_back("rotate", number(o.rotate));
    if (o.keystone != 0) f.emplace_back("keystone", number(o.keystone));
    if (o.blur != 0) f.emplace_back("blur", number(o.blur));
    if (o.exposure != 0) f.emplace_back("exposure", number(o.exposure));
    if (o.seed != 0) f.emplace_back("seed", std::to_string(o.seed));
  } else if (const auto* s = std::get_if<CameraStage>(&stage)) {
    const CameraOptions& o = s->options;
    const CameraOptions d;
    *kind = "camera";
    f.emplace_back("isp", kIsp[static_cast<int>(o.isp)]);
    if (o.bayer != d.bayer) f.emplace_back("bayer", kBayer[static_cast<int>(o.bayer)]);
    if (o.sensor != d.sensor) f.emplace_back("sensor", sensor_name(o.sensor));
    if (o.demosaic != demosaic_methods(o.isp).front()) f.emplace_back("demosaic", o.demosaic);
    if (o.white_balance != d.white_balance) f.emplace_back("wb", kWhiteBalance[static_cast<int>(o.white_balance)]);
    if (o.color_matrix != d.color_matrix) f.emplace_back("ccm", "0");
    if (o.gamma != d.gamma) f.emplace_back("gamma", kGamma[static_cast<int>(o.gamma)]);
    if (o.tone_curve != d.tone_curve) f.emplace_back("tone", "0");
    if (o.denoise != d.denoise) f.emplace_back("denoise", number(o.denoise));
    if (o.sharpen != d.sharpen) f.emplace_back("sharpen", number(o.sharpen));
    if (o.noise_level_function) {
      f.emplace_back("nlf", o.noise_level_function->camera);
      f.emplace_back("iso", std::to_string(o.noise_level_function->iso));
    } else {
      if (o.shot_noise != d.shot_noise) f.emplace_back("shot", number(o.shot_noise));
      if (o.read_noise != d.read_noise) f.emplace_back("read", number(o.read_noise));
    }
    if (o.photosites != d.photosites) f.emplace_back("photosites", std::to_string(o.photosites));
    if (o.fill != d.fill) f.emplace_back("fill", number(o.fill));
    if (o.oversample != d.oversample) f.emplace_back("oversample", std::to_string(o.oversample));
    if (o.red_gain != d.red_gain) f.emplace_back("red_gain", number(o.red_gain));
    if (o.blue_gain != d.blue_gain) f.emplace_back("blue_gain", number(o.blue_gain));
    if (o.seed != d.seed) f.emplace_back("seed", std::to_string(o.seed));
  } else if (const auto* s = std::get_if<EncodeStage>(&stage)) {
    const EncodeOptions& o = s->options;
    *kind = "encode";
    f.emplace_back("format", kEncodeFormats[encode_format_index(o.format)]);
    if (o.quality != 0 && o.format != ImageFormat::kPng) f.emplace_back("quality", std::to_string(o.quality));
    if (o.format == ImageFormat::kJpeg) {
      if (o.subsampling != ChromaSubsampling::k420) f.emplace_back("subsampling", kSubsampling[static_cast<int>(o.subsampling)]);
      if (o.dct != DctMethod::kIslow) f.emplace_back("dct", kDct[static_cast<int>(o.dct)]);
    }
    if (o.lossless && (o.format == ImageFormat::kWebp || o.format == ImageFormat::kHeif)) f.emplace_back("lossless", "1");
    if (!o.preset.empty() && o.format == ImageFormat::kHeif) f.emplace_back("preset", o.preset);
  } else if (const auto* s = std::get_if<DecodeStage>(&stage)) {
    const DecodeOptions& o = s->options;
    *kind = "decode";
    f.emplace_back("decoder", kDecoders[static_cast<int>(o.decoder)]);
    if (o.decoder == Decoder::kTurboJpeg) {
      if (o.dct != DctMethod::kIslow) f.emplace_back("dct", kDct[static_cast<int>(o.dct)]);
      if (!o.fancy_upsampling) f.emplace_back("upsampling", "simple");
    }
    if (!o.apply_orientation) f.emplace_back("orientation", "ignore");
  } else if (const auto* s = std::get_if<ResizeStage>(&stage)) {
    const ResizeOptions& o = s->options;
    *kind = "resize";
    f.emplace_back("library", resize_library_name(o.library));
    f.emplace_back("method", o.method);
    f.emplace_back("size", size_text(o.size));
    if (o.antialias) f.emplace_back("antialias", "1");
  } else if (const auto* s = std::get_if<CropStage>(&stage)) {
    const CropOptions& o = s->options;
    *kind = "crop";
    f.emplace_back("mode", "center");
    if (o.from_model) {
      f.emplace_back("size", "model");
    } else if (o.fraction > 0) {
      std::string text = number(o.fraction);
      if (text.find('.') == std::string::npos) text += ".0";
      f.emplace_back("size", text);
    } else {
      f.emplace_back("size", o.width == o.height ? std::to_string(o.width)
                                                 : std::to_string(o.width) + "x" + std::to_string(o.height));
    }
  } else if (const auto* s = std::get_if<ColorStage>(&stage)) {
    const ColorConversionOptions& o = s->options;
    *kind = "color";
    f.emplace_back("matrix", o.matrix == YuvMatrix::kBt709 ? "bt709" : "bt601");
    f.emplace_back("range", o.range == YuvRange::kLimited ? "limited" : "full");
    if (o.chroma != ChromaSubsampling::k444) f.emplace_back("chroma", kSubsampling[static_cast<int>(o.chroma)]);
    if (!o.round_to_uint8) f.emplace_back("rounding", "float");
    if (o.swap_red_blue) f.emplace_back("order", "bgr");
  }
  return f;
}

const StageSyntax* find_syntax(const std::string& kind) {
  for (const auto& s : syntax()) {
    if (kind == s.kind) return &s;
  }
  return nullptr;
}

std::vector<std::string> stage_kinds() {
  std::vector<std::string> kinds;
  for (const auto& s : syntax()) kinds.emplace_back(s.kind);
  return kinds;
}

// Checks keys against the stage's syntax, then builds it.
Stage build_stage(const Fields& fields, const std::string& where) {
  const StageSyntax* s = find_syntax(fields.kind);
  if (s == nullptr) {
    throw Error(invalid_argument(where + ": unknown stage '" + fields.kind + "' (allowed: " + join(stage_kinds()) + ")"));
  }
  for (const auto& [key, value] : fields.values) {
    const bool known = std::count(s->positional.begin(), s->positional.end(), key) ||
                       std::count(s->named.begin(), s->named.end(), key);
    if (!known) {
      std::vector<std::string> allowed = s->positional;
      allowed.insert(allowed.end(), s->named.begin(), s->named.end());
      throw Error(invalid_argument(where + ": unknown option '" + key + "' (allowed: " + join(allowed) + ")"));
    }
  }
  for (const auto& key : s->positional) {
    if (!fields.values.count(key)) {
      throw Error(invalid_argument(where + ": missing " + key + " (" + fields.kind + ":" + join(s->positional, ",") + ")"));
    }
  }
  return stage_from_fields(fields, where);
}

Stage parse_stage_text(const std::string& text, const std::string& where) {
  const auto colon = text.find(':');
  Fields fields;
  fields.kind = trim(text.substr(0, colon));
  if (fields.kind.empty()) throw Error(invalid_argument(where + ": empty stage"));
  const StageSyntax* s = find_syntax(fields.kind);
  if (s == nullptr) {
    throw Error(invalid_argument(where + ": unknown stage '" + fields.kind + "' (allowed: " + join(stage_kinds()) + ")"));
  }
  std::size_t next_positional = 0;
  if (colon != std::string::npos) {
    for (const std::string& token : split(text.substr(colon + 1), ',')) {
      if (token.empty()) throw Error(invalid_argument(where + ": empty value"));
      const auto eq = token.find('=');
      if (eq == std::string::npos) {
        if (next_positional >= s->positional.size()) {
          throw Error(invalid_argument(where + ": unexpected value '" + token + "' (" + fields.kind + ":" +
                                       join(s->positional, ",") + " takes " + std::to_string(s->positional.size()) +
                                       "; options are key=value)"));
        }
        fields.values[s->positional[next_positional++]] = token;
      } else {
        const std::string key = trim(token.substr(0, eq));
        if (fields.values.count(key)) throw Error(invalid_argument(where + ": '" + key + "' given twice"));
        fields.values[key] = trim(token.substr(eq + 1));
      }
    }
  }
  return build_stage(fields, where);
}

std::string json_scalar_text(const nlohmann::json& value, const std::string& where, const std::string& key) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "1" : "0";
  if (value.is_number_integer()) return std::to_string(value.get<long long>());
  if (value.is_number()) return FieldReader::format_number(value.get<double>());
  throw Error(invalid_argument(where + ": '" + key + "' must be a string, number or boolean"));
}

}  // namespace

Expected<Stage> parse_stage(const std::string& spec) {
  return capture([&] { return parse_stage_text(trim(spec), "stage '" + trim(spec) + "'"); });
}

Expected<Pipeline> parse_pipeline(const std::string& spec) {
  return capture([&] {
    Pipeline pipeline;
    if (trim(spec).empty()) return pipeline;  // no stages: the source as decoded
    const auto tokens = split(spec, '|');
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      pipeline.stages.push_back(
          parse_stage_text(tokens[i], "pipeline stage " + std::to_string(i + 1) + " '" + tokens[i] + "'"));
    }
    return pipeline;
  });
}

Expected<Pipeline> pipeline_from_json(const nlohmann::json& json) {
  if (json.is_string()) return parse_pipeline(json.get<std::string>());
  return capture([&] {
    if (!json.is_array()) throw Error(invalid_argument("pipeline: expected an array of stages or a spec string"));
    Pipeline pipeline;
    for (std::size_t i = 0; i < json.size(); ++i) {
      const std::string where = "pipeline stage " + std::to_string(i + 1);
      const auto& item = json[i];
      if (item.is_string()) {
        pipeline.stages.push_back(parse_stage_text(item.get<std::string>(), where));
        continue;
      }
      if (!item.is_object() || !item.contains("stage") || !item["stage"].is_string()) {
        throw Error(invalid_argument(where + ": expected an object with a \"stage\" name"));
      }
      Fields fields;
      fields.kind = item["stage"].get<std::string>();
      for (const auto& [key, value] : item.items()) {
        if (key != "stage") fields.values[key] = json_scalar_text(value, where, key);
      }
      pipeline.stages.push_back(build_stage(fields, where + " (" + fields.kind + ")"));
    }
    return pipeline;
  });
}

std::string stage_to_string(const Stage& stage) {
  std::string kind;
  const auto fields = stage_fields(stage, &kind);
  const StageSyntax* s = find_syntax(kind);
  std::string out = kind + (fields.empty() ? "" : ":");
  bool first = true;
  for (const auto& [key, value] : fields) {
    const bool positional = std::count(s->positional.begin(), s->positional.end(), key) != 0;
    out += (first ? "" : ",") + (positional ? value : key + "=" + value);
    first = false;
  }
  return out;
}

std::string pipeline_to_string(const Pipeline& pipeline) {
  std::vector<std::string> stages;
  for (const auto& stage : pipeline.stages) stages.push_back(stage_to_string(stage));
  return join(stages, "|");
}

nlohmann::json pipeline_to_json(const Pipeline& pipeline) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& stage : pipeline.stages) {
    std::string kind;
    nlohmann::json object = {{"stage", ""}};
    for (const auto& [key, value] : stage_fields(stage, &kind)) object[key] = value;
    object["stage"] = kind;
    out.push_back(object);
  }
  return out;
}

PipelineParts split_capture(const Pipeline& pipeline) {
  const auto& stages = pipeline.stages;
  auto end = std::find_if(stages.begin(), stages.end(), [](const Stage& s) { return std::holds_alternative<EncodeStage>(s); });
  if (end != stages.end()) {
    ++end;
  } else {
    end = std::find_if(stages.begin(), stages.end(), [](const Stage& s) {
      return !std::holds_alternative<ScreenStage>(s) && !std::holds_alternative<CameraStage>(s);
    });
  }
  return {Pipeline{{stages.begin(), end}}, Pipeline{{end, stages.end()}}};
}

Pipeline concatenate(const Pipeline& first, const Pipeline& second) {
  Pipeline out = first;
  out.stages.insert(out.stages.end(), second.stages.begin(), second.stages.end());
  return out;
}

Pipeline bind_to_input(const Pipeline& pipeline, const InputContract& contract) {
  Pipeline bound = pipeline;
  for (Stage& stage : bound.stages) {
    if (auto* resize = std::get_if<ResizeStage>(&stage); resize && resize->options.size.from_model) {
      TargetSize& size = resize->options.size;
      size = TargetSize{};
      if (contract.resize == ResizeRule::kShorterSide) {
        size.shorter_side = contract.resize_size;
      } else if (contract.resize == ResizeRule::kSquash) {
        size.width = size.height = contract.resize_size;
      } else {
        size.width = contract.width;
        size.height = contract.height;
      }
    } else if (auto* crop = std::get_if<CropStage>(&stage); crop && crop->options.from_model) {
      crop->options = CropOptions{contract.width, contract.height, 0.0, false};
    }
  }
  return bound;
}

Expected<Payload> apply_stage(const Stage& stage, Payload payload, const std::string& origin,
                              const DecodeLimits& limits) {
  const bool is_decode = std::holds_alternative<DecodeStage>(stage);
  if (payload.bytes.empty() && !payload.has_pixels()) return corrupt(origin + ": empty file (0 bytes), not an image");
  if (is_decode) {
    if (payload.bytes.empty()) {
      return invalid_argument(origin + ": " + stage_to_string(stage) +
                              " needs encoded bytes, but the picture is already pixels (put an encode stage before it)");
    }
    DecodeOptions options = std::get<DecodeStage>(stage).options;
    options.limits = limits;
    auto image = decode_image(payload.bytes, origin, options);
    if (!image) return image.status();
    return Payload{{}, std::move(*image)};
  }
  if (!payload.has_pixels()) {
    // Pixel stages read encoded input as decode:auto would.
    DecodeOptions options;
    options.limits = limits;
    auto image = decode_image(payload.bytes, origin, options);
    if (!image) return image.status();
    payload = Payload{{}, std::move(*image)};
  }
  const Image& image = *payload.image;
  auto with_context = [&](Status status) {
    return Status(status.code(), origin + ": " + stage_to_string(stage) + ": " + status.message());
  };
  Expected<Image> next = Image{};
  if (const auto* s = std::get_if<EncodeStage>(&stage)) {
    auto bytes = encode_image(image, s->options);
    if (!bytes) return with_context(bytes.status());
    return Payload{std::move(*bytes), std::nullopt};
  } else if (const auto* s = std::get_if<ScreenStage>(&stage)) {
    next = photograph_screen(image, s->options);
  } else if (const auto* s = std::get_if<CameraStage>(&stage)) {
    next = simulate_camera(image, s->options);
  } else if (const auto* s = std::get_if<ResizeStage>(&stage)) {
    next = resize_image(image, s->options);
  } else if (const auto* s = std::get_if<CropStage>(&stage)) {
    next = center_crop(image, s->options);
  } else if (const auto* s = std::get_if<ColorStage>(&stage)) {
    next = color_round_trip(image, s->options);
  }
  if (!next) return with_context(next.status());
  return Payload{{}, std::move(*next)};
}

Expected<Image> run_pipeline(const Pipeline& pipeline, std::vector<std::uint8_t> source_bytes,
                             const std::string& origin, const DecodeLimits& limits) {
  Payload payload{std::move(source_bytes), std::nullopt};
  for (const auto& stage : pipeline.stages) {
    auto next = apply_stage(stage, std::move(payload), origin, limits);
    if (!next) return next.status();
    payload = std::move(*next);
  }
  if (payload.has_pixels()) return std::move(*payload.image);
  DecodeOptions options;
  options.limits = limits;
  return decode_image(payload.bytes, origin, options);
}

Expected<Image> run_pipeline(const Pipeline& pipeline, const Image& source, const std::string& origin) {
  Payload payload{{}, source};
  for (const auto& stage : pipeline.stages) {
    auto next = apply_stage(stage, std::move(payload), origin);
    if (!next) return next.status();
    payload = std::move(*next);
  }
  if (payload.has_pixels()) return std::move(*payload.image);
  return decode_image(payload.bytes, origin, DecodeLimits{});
}

}  // namespace edgefleet
