#include "edgefleet/input_contract.h"

#include "core/named_values.h"

namespace edgefleet {
namespace {

const NamedValues<InputColor> kColors = {{"gray", InputColor::kGray}, {"rgb", InputColor::kRgb}, {"bgr", InputColor::kBgr}};
const NamedValues<ResizeRule> kResizeRules = {
    {"exact", ResizeRule::kExact}, {"shorter-side", ResizeRule::kShorterSide}, {"squash", ResizeRule::kSquash}};
const NamedValues<Interpolation> kInterpolations = {{"bilinear-antialias", Interpolation::kBilinearAntialias},
                                                    {"bilinear", Interpolation::kBilinear},
                                                    {"area", Interpolation::kArea},
                                                    {"nearest", Interpolation::kNearest},
                                                    {"bicubic", Interpolation::kBicubic}};

}  // namespace

Expected<InputColor> parse_input_color(const std::string& name) { return parse_named(kColors, "input.color", name); }
std::string input_color_name(InputColor color) { return name_of(kColors, color); }
Expected<ResizeRule> parse_resize_rule(const std::string& name) { return parse_named(kResizeRules, "input.resize", name); }
std::string resize_rule_name(ResizeRule rule) { return name_of(kResizeRules, rule); }
Expected<Interpolation> parse_interpolation(const std::string& name) {
  return parse_named(kInterpolations, "input.interpolation", name);
}
std::string interpolation_name(Interpolation interpolation) { return name_of(kInterpolations, interpolation); }

}  // namespace edgefleet
