#include "edgefleet/stability_report.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "edgefleet/stability_run.h"
#include "edgefleet/stability_summary.h"
#include "test_support.h"

namespace edgefleet {
namespace {

using testing::TempDir;

// A real run's summary: 12 Fashion-MNIST-like inputs, two sources of two environments each.
nlohmann::json run_summary(const TempDir& dir) {
  testing::write_fashion_mnist_split(dir.path(), "t10k", 12, false);
  auto data = open_fashion_mnist(FashionMnistSplit::kTest, dir.path()).value();
  const ModelCard card = testing::write_tiny_model(dir.path());
  std::vector<StabilityEnvironment> environments;
  for (const char* item : {"codec/png=encode:png", "codec/jpeg20=encode:jpeg,quality=20|decode:turbojpeg",
                           "precision/fp32=infer:precision=fp32", "precision/fp16=infer:precision=fp16"}) {
    environments.push_back(parse_environment(item).value());
  }
  auto store = ResultsStore::open(dir.file("run.sqlite")).value();
  EXPECT_TRUE(run_stability(card, *data, environments, *store));
  return summarize_stability(*store).value();
}

std::string run_command(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return output;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output.append(buffer.data(), n);
  pclose(pipe);
  return output;
}

std::string percent(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", 100.0 * v);
  return text;
}

TEST(StabilityReport, EmbedsTheSummaryWithoutEndingItsScriptEarly) {
  nlohmann::json summary = {{"images", 1}, {"most_unstable", {{{"input", "a</script><b>x"}}}}};
  const std::string html = stability_report_html(summary);
  EXPECT_EQ(html.find("a</script>"), std::string::npos);
  EXPECT_NE(html.find("a<\\/script>"), std::string::npos);
}

TEST(StabilityReport, ThumbnailsArePngDataUris) {
  const Image photo = testing::make_test_photo(300, 200, 3);
  const std::string uri = thumbnail_data_uri(photo, 60).value();
  EXPECT_EQ(uri.rfind("data:image/png;base64,iVBORw0KGgo", 0), 0u) << uri.substr(0, 40);
}

// The page renders in a real browser and shows exactly summary.json's numbers.
TEST(StabilityReport, RendersInHeadlessChromiumWithTheSummaryNumbers) {
  if (run_command("command -v chromium").empty()) GTEST_SKIP() << "chromium is not installed";
  TempDir dir;
  const nlohmann::json summary = run_summary(dir);
  StabilityReportExtras extras;
  extras.class_names = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"};
  const std::string page = dir.file("report.html");
  std::ofstream(page) << stability_report_html(summary, extras);
  const std::string dom = run_command("chromium --headless --no-sandbox --disable-gpu --user-data-dir=" + dir.file("chrome") +
                                      " --dump-dom file://" + page + " 2>/dev/null");
  ASSERT_NE(dom.find("data-rendered=\"ok\""), std::string::npos) << dom.substr(0, 2000);

  auto shown = [&](const std::string& metric) {
    std::smatch match;
    const std::regex pattern("data-metric=\"" + metric + "\"[^>]*>([^<]*)<");
    return std::regex_search(dom, match, pattern) ? match[1].str() : std::string("(missing)");
  };
  EXPECT_EQ(shown("images"), std::to_string(summary["images"].get<int>()));
  EXPECT_EQ(shown("instability"), percent(summary["instability"]));
  EXPECT_EQ(shown("instability_top3"), percent(summary["instability_top3"]));
  EXPECT_EQ(shown("disagreement"), percent(summary["disagreement"]));
  EXPECT_EQ(shown("accuracy_drop\\.mean"), percent(summary["accuracy_drop"]["mean"]));
  EXPECT_EQ(shown("accuracy_drop\\.max"), percent(summary["accuracy_drop"]["max"]));
  ASSERT_EQ(summary["per_source"].size(), 2u);
  for (const auto& source : summary["per_source"]) {
    EXPECT_EQ(shown("per_source\\." + source["source"].get<std::string>() + "\\.instability"), percent(source["instability"]));
  }
  for (const auto& e : summary["environments"]) {
    const std::regex pattern("data-value=\"accuracy:" + e["name"].get<std::string>() + "\"[^>]*>([^<]*)<");
    std::smatch match;
    ASSERT_TRUE(std::regex_search(dom, match, pattern)) << e["name"];
    EXPECT_EQ(match[1].str(), percent(e["accuracy"]));
  }
  // One heatmap cell per environment pair, one gallery card per unstable input listed.
  const std::size_t n = summary["environments"].size();
  std::size_t cells = 0;
  for (auto at = dom.find("data-cell="); at != std::string::npos; at = dom.find("data-cell=", at + 1)) ++cells;
  EXPECT_EQ(cells, n * n);
  std::size_t cards = 0;
  for (auto at = dom.find("class=\"item\""); at != std::string::npos; at = dom.find("class=\"item\"", at + 1)) ++cards;
  EXPECT_EQ(cards, summary["most_unstable"].size());
}

}  // namespace
}  // namespace edgefleet
