#include "edgefleet/profiler.h"
#include "edgefleet/simulator.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace edgefleet {
namespace {

ZooProfile two_models() {
  ZooProfile zoo;
  zoo.name = "two";
  zoo.variants = {{"fast", 0.5, 10, 0}, {"slow", 0.9, 100, 0}};
  zoo.on_device = VariantProfile{"local", 0.3, 20, 0};
  return zoo;
}

SimulationConfig config(std::vector<std::string> policies, std::vector<double> slas, int requests = 1000) {
  SimulationConfig c;
  c.policies = std::move(policies);
  c.slas_ms = std::move(slas);
  c.requests = requests;
  return c;
}

}  // namespace

TEST(NetworkModel, ParsesTheThreeForms) {
  EXPECT_EQ(parse_network_model("normal:100:50").value()->describe(), "normal(100 ms, 50 ms)");
  EXPECT_EQ(parse_network_model("cv:100:0.74").value()->describe(), "normal(100 ms, 74 ms)");
  testing::TempDir dir;
  testing::write_text(dir.file("t.txt"), "# ms\n10\n20\n");
  auto trace = parse_network_model("trace:" + dir.file("t.txt")).value();
  Rng rng(1);
  for (int i = 0; i < 20; ++i) {
    const double v = trace->sample_ms(rng);
    EXPECT_TRUE(v == 10 || v == 20);
  }
}

TEST(NetworkModel, BadSpecsNameTheProblem) {
  EXPECT_NE(parse_network_model("normal:100").status().message().find("expected normal:MEAN_MS:STD_MS"), std::string::npos);
  EXPECT_NE(parse_network_model("normal:abc:5").status().message().find("mean 'abc'"), std::string::npos);
  EXPECT_NE(parse_network_model("wifi").status().message().find("expected normal"), std::string::npos);
  EXPECT_EQ(parse_network_model("trace:/nonexistent").status().code(), StatusCode::kNotFound);
}

TEST(NetworkModel, NormalDrawsAreNeverNegative) {
  auto net = parse_network_model("normal:10:100").value();
  Rng rng(2);
  for (int i = 0; i < 1000; ++i) EXPECT_GE(net->sample_ms(rng), 0.0);
}

TEST(NetworkModel, AnInputSampleIsHalfTheRoundTrip) {
  Rng rng(1);
  auto round_trip = parse_network_model("normal:40:0").value();
  auto input = parse_network_model("normal:40:0", NetworkSample::kInput).value();
  EXPECT_DOUBLE_EQ(round_trip->sample_ms(rng), 40.0);
  EXPECT_DOUBLE_EQ(input->sample_ms(rng), 80.0);  // the paper's T_nw = 2 x T_input
  EXPECT_NE(input->describe().find("2 x T_input"), std::string::npos);
  EXPECT_FALSE(parse_network_model("normal:40", NetworkSample::kInput).has_value());
}

TEST(Simulate, FixedNetworkGivesExactFigures) {
  // Network 50 ms, no variance. SLA 200: MDInference fits "slow" (100 < 150), all met.
  auto net = parse_network_model("normal:50:0").value();
  auto rows = simulate(two_models(), *net, config({"mdinference", "static-accuracy"}, {200, 120})).value();
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_NEAR(rows[0].aggregate_accuracy, 0.9, 1e-9);
  EXPECT_DOUBLE_EQ(rows[0].sla_attainment, 1.0);
  EXPECT_DOUBLE_EQ(rows[0].mean_latency_ms, 150.0);
  // SLA 120: MDInference takes "fast" (60 ms); static accuracy overruns and falls back.
  EXPECT_NEAR(rows[2].aggregate_accuracy, 0.5, 1e-9);
  EXPECT_DOUBLE_EQ(rows[2].usage[0], 1.0);
  EXPECT_DOUBLE_EQ(rows[3].on_device_reliance, 1.0);
  EXPECT_NEAR(rows[3].aggregate_accuracy, 0.3, 1e-9);
  EXPECT_DOUBLE_EQ(rows[3].sla_attainment, 1.0);  // the local answer is ready by the deadline
  EXPECT_DOUBLE_EQ(rows[3].mean_latency_ms, 120.0);
}

TEST(Simulate, WithoutDuplicationLateAnswersMissTheSla) {
  auto net = parse_network_model("normal:50:0").value();
  SimulationConfig c = config({"static-accuracy"}, {120});
  c.duplicate = false;
  auto rows = simulate(two_models(), *net, c).value();
  EXPECT_DOUBLE_EQ(rows[0].sla_attainment, 0.0);
  EXPECT_DOUBLE_EQ(rows[0].on_device_reliance, 0.0);
  EXPECT_NEAR(rows[0].aggregate_accuracy, 0.9, 1e-9);
}

TEST(Simulate, SameSeedSameResults) {
  auto net = parse_network_model("normal:100:50").value();
  const auto zoo = read_zoo_profile("paper-table3").value();
  auto a = simulate(zoo, *net, config({}, {150, 250}, 2000)).value();
  auto b = simulate(zoo, *net, config({}, {150, 250}, 2000)).value();
  ASSERT_EQ(a.size(), 14u);
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].aggregate_accuracy, b[i].aggregate_accuracy);
}

TEST(Simulate, MdInferenceBeatsStaticAccuracyOnAVariableNetwork) {
  auto net = parse_network_model("normal:92.02:48.38").value();
  auto rows = simulate(read_zoo_profile("paper-table3").value(), *net, config({"mdinference", "static-accuracy"}, {250}, 10000)).value();
  EXPECT_GT(rows[0].aggregate_accuracy, rows[1].aggregate_accuracy);
  EXPECT_LT(rows[0].on_device_reliance, rows[1].on_device_reliance);
}

TEST(Simulate, DuplicationNeedsAnOnDeviceModel) {
  ZooProfile zoo = two_models();
  zoo.on_device.reset();
  auto net = parse_network_model("normal:50:0").value();
  EXPECT_NE(simulate(zoo, *net, config({}, {100})).status().message().find("needs an on-device model"), std::string::npos);
}

TEST(ZooProfileFile, BadVariantIsReportedWithItsIndex) {
  testing::TempDir dir;
  testing::write_text(dir.file("z.json"), R"({"variants": [{"name": "a", "accuracy": 0.5, "mean_ms": 3}, {"name": "b"}]})");
  auto zoo = read_zoo_profile(dir.file("z.json"));
  EXPECT_NE(zoo.status().message().find("variants[1] needs name"), std::string::npos);
}

TEST(ZooProfileFile, UnknownBuiltInNamesTheChoices) {
  EXPECT_NE(read_zoo_profile("paper-table9").status().message().find("paper-table3"), std::string::npos);
}

TEST(Simulate, DuplicatingOnlyWhenAMissIsLikelyRunsTheLocalModelLessForTheSameAccuracy) {
  const auto zoo = read_zoo_profile("paper-table3").value();
  auto net = parse_network_model("normal:57.87:30.79").value();
  SimulationConfig always = config({"mdinference"}, {250}, 10000);
  SimulationConfig adaptive = always;
  adaptive.duplicate_above_miss_probability = 0.01;
  const auto a = simulate(zoo, *net, always).value().front();
  const auto b = simulate(zoo, *net, adaptive).value().front();
  EXPECT_DOUBLE_EQ(a.local_runs, 1.0);  // the paper races on every request
  EXPECT_LT(b.local_runs, 0.5 * a.local_runs);
  EXPECT_NEAR(b.aggregate_accuracy, a.aggregate_accuracy, 0.005);

  auto hopeless = parse_network_model("normal:400:0").value();  // every remote answer is late
  const auto c = simulate(zoo, *hopeless, adaptive).value().front();
  EXPECT_GE(c.local_runs, 0.999);  // all but the first request, before anything was measured
  SimulationConfig bad = adaptive;
  bad.duplicate_above_miss_probability = 1.5;
  EXPECT_EQ(simulate(zoo, *net, bad).status().code(), StatusCode::kInvalidArgument);
}

TEST(SimulationJson, RowsHaveTheDocumentedFields) {
  auto net = parse_network_model("normal:50:0").value();
  auto rows = simulate(two_models(), *net, config({"random"}, {100}, 10)).value();
  const auto j = simulation_rows_to_json(two_models(), rows);
  for (const char* key : {"policy", "sla_ms", "aggregate_accuracy", "sla_attainment", "on_device_reliance", "local_runs", "model_usage"}) {
    EXPECT_TRUE(j[0].contains(key)) << key;
  }
}

}  // namespace edgefleet

namespace edgefleet {

TEST(ProfileRepository, MeasuresEveryCardAndPicksTheFastestForTheDevice) {
  testing::TempDir dir;
  ModelCard card = testing::write_tiny_model(dir.file("repo/task-a"), "tiny");
  card.accuracy = AccuracyRecord{"synthetic", 10, 0.5, 0.9};
  ASSERT_TRUE(write_card(card, card.card_path).is_ok());
  ProfileOptions options;
  options.warmup = 1;
  options.runs = 3;
  auto zoos = profile_repository(dir.file("repo"), options).value();
  ASSERT_EQ(zoos.size(), 1u);
  EXPECT_EQ(zoos[0].name, "task-a");
  ASSERT_EQ(zoos[0].variants.size(), 1u);
  EXPECT_GT(zoos[0].variants[0].mean_ms, 0.0);
  EXPECT_DOUBLE_EQ(zoos[0].variants[0].accuracy, 0.5);
  EXPECT_EQ(zoos[0].on_device->name, "tiny");
}

TEST(ProfileRepository, CardWithoutAccuracyIsRejected) {
  testing::TempDir dir;
  testing::write_tiny_model(dir.file("repo"), "tiny");
  auto zoos = profile_repository(dir.file("repo"));
  EXPECT_EQ(zoos.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(zoos.status().message().find("has no accuracy"), std::string::npos);
}

TEST(ProfileRepository, MissingFolderIsNotFound) {
  EXPECT_EQ(profile_repository("/nonexistent/repo").status().code(), StatusCode::kNotFound);
}

}  // namespace edgefleet

#include "edgefleet/plot.h"

namespace edgefleet {

TEST(LinePlot, WritesAnSvgWhenGnuplotIsInstalled) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) GTEST_SKIP() << "gnuplot not installed";
  testing::TempDir dir;
  LinePlot plot{"it's a title", "x", "y", {{"a", {{1, 2}, {2, 3}}}, {"b", {{1, 1}}}}};
  ASSERT_TRUE(write_line_plot_svg(plot, dir.file("p.svg")).is_ok());
  const std::string svg = testing::read_text(dir.file("p.svg"));
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.file("p.svg.dat")));
}

TEST(LinePlot, EmptyPlotIsRejected) {
  EXPECT_EQ(write_line_plot_svg(LinePlot{"t", "x", "y", {}}, "/tmp/never.svg").code(),
            std::system("command -v gnuplot >/dev/null 2>&1") == 0 ? StatusCode::kInvalidArgument : StatusCode::kUnsupported);
}

}  // namespace edgefleet
