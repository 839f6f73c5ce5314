#include <httplib.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "edgefleet/adaptive_runtime.h"
#include "edgefleet/device_profile.h"
#include "edgefleet/multi_branch.h"
#include "edgefleet/port_server.h"
#include "test_support.h"

namespace edgefleet {
namespace {

using nlohmann::json;

// One small port folder served, and one small multi-branch model, shared by the tests.
class AdaptiveRuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::fashion_mnist_installed()) return;
    dir_ = new testing::TempDir();
    MultiBranchOptions options;
    options.source_model = "cnn_tiny";
    options.base_layers = 1;
    options.budgets = {0.4, 1.0};
    options.channel_multiple = 4;
    options.finetune.steps = 10;
    options.train_images = 256;
    options.eval_images = 128;
    options.threads = 1;
    auto build = build_multi_branch(options, dir_->file("mb.pt"));
    ASSERT_TRUE(build.has_value()) << build.status().to_string();
    source_macs_ = build->branches.back().macs;

    const json config = {{"base_model", "cnn_tiny"},
                         {"algorithm", "l1"},
                         {"channel_multiple", 1},
                         {"train_images", 256},
                         {"eval_images", 128},
                         {"threads", 1},
                         {"finetune", {{"steps", 5}}},
                         {"goals", {{{"name", "half"}, {"max_macs", source_macs_ / 2}}}}};
    auto parsed = port_config_from_json(config, "test", builtin_fleet_dir());
    ASSERT_TRUE(parsed.has_value()) << parsed.status().to_string();
    PortServerOptions server_options;
    server_options.out_dir = dir_->file("port");
    server_options.fleet_dir = builtin_fleet_dir();
    auto server = PortServer::start(*parsed, server_options);
    ASSERT_TRUE(server.has_value()) << server.status().to_string();
    server_ = std::move(server).value().release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
    server_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!testing::fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    ASSERT_NE(server_, nullptr);
  }
  static httplib::Client client() { return httplib::Client(server_->url().substr(7)); }

  static testing::TempDir* dir_;
  static PortServer* server_;
  static std::int64_t source_macs_;
};

testing::TempDir* AdaptiveRuntimeTest::dir_ = nullptr;
PortServer* AdaptiveRuntimeTest::server_ = nullptr;
std::int64_t AdaptiveRuntimeTest::source_macs_ = 0;

TEST_F(AdaptiveRuntimeTest, APortedGoalIsAdaptedFromItsNearestPredecessor) {
  auto http = client();
  http.set_read_timeout(300, 0);
  auto res = http.Post("/v1/goals", json{{"name", "quarter"}, {"max_macs", source_macs_ / 4}}.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json goal = json::parse(res->body)["goals"][0];
  EXPECT_EQ(goal["goal"], "quarter");
  EXPECT_EQ(goal["parent"], "half");  // more demanding than "half" on its only constraint
  EXPECT_TRUE(goal["constraints_met"].get<bool>());
  EXPECT_LE(goal["macs"].get<std::int64_t>(), source_macs_ / 4);
  auto model = http.Get("/v1/models/quarter");
  ASSERT_EQ(model->status, 200);
  std::istringstream in(model->body);
  EXPECT_NO_THROW(torch::jit::load(in));
  // Batch mode: several goals in one request.
  auto batch = http.Post("/v1/goals", json{{"goals", {{{"name", "third"}, {"max_macs", source_macs_ / 3}}, {{"name", "quarter"}, {"max_macs", source_macs_ / 4}}}}}.dump(),
                         "application/json");
  ASSERT_EQ(batch->status, 200) << batch->body;
  EXPECT_EQ(json::parse(batch->body)["goals"].size(), 2u);
}

TEST_F(AdaptiveRuntimeTest, BadGoalsGetA4xxNamingTheProblem) {
  auto http = client();
  auto malformed = http.Post("/v1/goals", json{{"name", "x"}, {"max_macs", -3}}.dump(), "application/json");
  ASSERT_EQ(malformed->status, 400);
  EXPECT_NE(malformed->body.find("max_macs"), std::string::npos);
  EXPECT_EQ(http.Post("/v1/goals", "{not json", "application/json")->status, 400);
  EXPECT_EQ(http.Post("/v1/goals", json{{"name", "half"}, {"max_macs", 5}}.dump(), "application/json")->status, 409);
  EXPECT_EQ(http.Get("/v1/models/nothing")->status, 404);
  // A goal no width can meet is refused and leaves the folder as it was: later goals still work.
  http.set_read_timeout(300, 0);
  auto unmeetable = http.Post("/v1/goals", json{{"name", "tiny"}, {"max_macs", 5}}.dump(), "application/json");
  ASSERT_EQ(unmeetable->status, 400);
  EXPECT_NE(unmeetable->body.find("cannot be met"), std::string::npos);
  EXPECT_EQ(http.Post("/v1/goals", json{{"name", "fifth"}, {"max_macs", source_macs_ / 5}}.dump(), "application/json")->status, 200);
}

TEST_F(AdaptiveRuntimeTest, AViolatedTargetSwitchesBranchAtOnceAndSwapsInARe_adaptedModel) {
  MonitorOptions probe;
  probe.calibration_runs = 10;
  const double widest_ms = AdaptiveRuntime::start(dir_->file("mb.pt"), probe).value()->branch_latency_ms().back();
  MonitorOptions options;
  options.target_ms = 0.6 * widest_ms;  // violated even unloaded: the monitor must act
  options.window = 5;
  options.check_every_ms = 20;
  options.calibration_runs = 3;
  options.port_url = server_->url();
  auto runtime = AdaptiveRuntime::start(dir_->file("mb.pt"), options).value();
  EXPECT_EQ(runtime->active_model(), "branch 1");  // the widest first
  std::vector<float> image(28 * 28, 0.3f);
  bool switched = false, answered = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline && !(switched && answered)) {
    ASSERT_TRUE(runtime->infer(image.data(), 1).has_value());
    for (const auto& e : runtime->events()) {
      switched = switched || (e.what == "switched" && e.detail.rfind("branch 0", 0) == 0);
      // On a loaded machine (the suite's other tests beside this one) the latencies the monitor
      // measures can be several times the probe's, and the MACs goal it derives then falls
      // below the narrowest width: the port server's refusal is the right answer to that
      // request (seen once in CI). Any other failure is a defect.
      const bool refused_as_unmeetable = e.what == "failed" && e.detail.find("cannot be met") != std::string::npos;
      answered = answered || e.what == "swapped" || e.what == "kept" || refused_as_unmeetable;
      if (!refused_as_unmeetable) EXPECT_NE(e.what, "failed") << e.detail;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(switched);
  EXPECT_TRUE(answered);
}

TEST_F(AdaptiveRuntimeTest, ASmallerComputeShareStretchesEveryInference) {
  MonitorOptions options;
  options.target_ms = 1e9;  // never violated: nothing switches
  options.window = 20;
  options.calibration_runs = 3;
  auto runtime = AdaptiveRuntime::start(dir_->file("mb.pt"), options).value();
  std::vector<float> image(28 * 28, 0.3f);
  // The fastest call of each share over interleaved rounds: a busy machine (the other tests
  // running beside this one) stalls calls, sometimes a whole window of them, but never speeds
  // one up, so minima over windows spread through the run compare the two shares.
  auto fastest_ms = [&](double& fastest) {
    for (int i = 0; i < 10; ++i) {
      const auto start = std::chrono::steady_clock::now();
      EXPECT_TRUE(runtime->infer(image.data(), 1).has_value());
      fastest = std::min(fastest, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
  };
  double full = 1e18, quarter = 1e18;
  for (int round = 0; round < 6; ++round) {
    ASSERT_TRUE(runtime->set_compute_share(1.0).is_ok());
    fastest_ms(full);
    ASSERT_TRUE(runtime->set_compute_share(0.25).is_ok());
    fastest_ms(quarter);
  }
  EXPECT_GT(quarter, 2.5 * full);
  EXPECT_EQ(runtime->set_compute_share(0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(runtime->set_compute_share(1.5).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(runtime->events().empty());
}

TEST_F(AdaptiveRuntimeTest, BadMonitorSettingsAreRefused) {
  MonitorOptions options;
  options.window = 1;
  EXPECT_EQ(AdaptiveRuntime::start(dir_->file("mb.pt"), options).status().code(), StatusCode::kInvalidArgument);
  options.window = 10;
  options.port_url = "ftp://x";
  EXPECT_EQ(AdaptiveRuntime::start(dir_->file("mb.pt"), options).status().code(), StatusCode::kInvalidArgument);
  options.port_url = "";
  EXPECT_EQ(AdaptiveRuntime::start(dir_->file("missing.pt"), options).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace edgefleet
