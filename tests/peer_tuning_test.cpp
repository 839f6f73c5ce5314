#include <httplib.h>

#include <algorithm>
#include <cstring>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "edgefleet/dataset.h"
#include "edgefleet/lsh_index.h"
#include "edgefleet/peer_coordinator.h"
#include "edgefleet/peer_tuning.h"
#include "edgefleet/zoo.h"
#include "peers/laplace_noise.h"
#include "zoo/training.h"
#include "test_support.h"
#include "zoo/module_builder.h"

namespace edgefleet {
namespace {

using nlohmann::json;

std::vector<double> random_point(std::mt19937_64& rng, int dims, double centre, double spread) {
  std::normal_distribution<double> noise(0.0, spread);
  std::vector<double> v(static_cast<std::size_t>(dims));
  for (auto& x : v) x = centre + noise(rng);
  return v;
}

TEST(LshIndex, NearestFindsTheQuerysClusterComparingFewHints) {
  LshIndex index(4, {8, 3, 4.0, 7});
  std::mt19937_64 rng(3);
  std::map<std::string, std::vector<double>> points;
  for (int i = 0; i < 300; ++i) {
    const std::string id = "d" + std::to_string(i);
    points[id] = random_point(rng, 4, 20.0 * (i % 10), 0.5);  // ten clusters, far apart
    ASSERT_TRUE(index.insert(id, points[id]).is_ok());
  }
  auto distance = [&](const std::string& a, const std::string& b) {
    double d2 = 0;
    for (int d = 0; d < 4; ++d) d2 += (points[a][d] - points[b][d]) * (points[a][d] - points[b][d]);
    return d2;
  };
  for (int q = 0; q < 20; ++q) {
    const std::string id = "d" + std::to_string(q * 7);
    auto found = index.nearest(points[id], 3, id);
    ASSERT_TRUE(found.has_value());
    ASSERT_EQ(found->size(), 3u);
    for (std::size_t i = 0; i < found->size(); ++i) {
      EXPECT_EQ(std::stoi((*found)[i].substr(1)) % 10, (q * 7) % 10) << (*found)[i] << " is not in the cluster of " << id;
      if (i > 0) EXPECT_LE(distance(id, (*found)[i - 1]), distance(id, (*found)[i]));  // nearest first
    }
    // Sublinear: the buckets held the query's cluster, not the whole index.
    EXPECT_LT(index.last_compared(), points.size() / 2);
  }
}

TEST(LshIndex, SmallIndexesAreSearchedExactly) {
  LshIndex index(2, {4, 4, 0.01, 1});  // buckets so narrow that they hold one hint each
  ASSERT_TRUE(index.insert("a", {0, 0}).is_ok());
  ASSERT_TRUE(index.insert("b", {3, 0}).is_ok());
  ASSERT_TRUE(index.insert("c", {1, 1}).is_ok());
  ASSERT_TRUE(index.insert("d", {9, 9}).is_ok());
  EXPECT_EQ(index.nearest({0, 0}, 2, "a").value(), (std::vector<std::string>{"c", "b"}));
}

TEST(LshIndex, ReinsertingAnIdMovesItAndDimensionMismatchesAreRefused) {
  LshIndex index(2);
  ASSERT_TRUE(index.insert("a", {0, 0}).is_ok());
  ASSERT_TRUE(index.insert("b", {10, 10}).is_ok());
  ASSERT_TRUE(index.insert("c", {5, 5}).is_ok());
  ASSERT_TRUE(index.insert("b", {0.1, 0.1}).is_ok());
  EXPECT_EQ(index.size(), 3u);
  EXPECT_EQ(index.nearest({0, 0}, 1, "a").value(), std::vector<std::string>{"b"});
  EXPECT_EQ(index.insert("d", {1, 2, 3}).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(index.nearest({1}, 1).has_value());
  EXPECT_EQ(index.insert("e", {NAN, 0}).code(), StatusCode::kInvalidArgument);
}

TEST(PeerTuning, PartitionsAreDisjointAndSkippingFollowsThePaper) {
  PeerConfig config = default_peer_config();
  config.images_per_device = 100;
  std::set<std::size_t> seen;
  for (std::size_t d = 0; d < config.devices.size(); ++d) {
    const auto items = device_partition(config, d, 1000);
    ASSERT_EQ(items.size(), 100u);
    for (auto i : items) EXPECT_TRUE(seen.insert(i).second) << "item " << i << " is in two partitions";
  }
  EXPECT_EQ(device_partition(config, 2, 1000), device_partition(config, 2, 1000));
  EXPECT_EQ(peers_skipped(1), 0);   // never all of the peers
  EXPECT_EQ(peers_skipped(2), 1);
  EXPECT_EQ(peers_skipped(4), 1);   // max(n/10, 1)
  EXPECT_EQ(peers_skipped(30), 3);
}

TEST(PeerTuning, ScenariosAreTheRowsOfTable3WithPrivacyRows) {
  PeerConfig config = default_peer_config();
  EXPECT_EQ(peer_scenarios(config), (std::vector<std::string>{"local", "kd-teacher", "peers-1", "peers-2", "peers-4", "peers-4-eps-5", "peers-4-eps-1"}));
  EXPECT_EQ(scenario_peers("peers-4-eps-1"), 4);
  EXPECT_DOUBLE_EQ(scenario_epsilon("peers-4-eps-0.5"), 0.5);
  EXPECT_DOUBLE_EQ(scenario_epsilon("peers-2"), 0.0);
}

TEST(PeerConfig, RoundTripsAndNamesTheBadField) {
  const PeerConfig config = default_peer_config();
  auto back = peer_config_from_json(peer_config_to_json(config), "x.json");
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  EXPECT_EQ(peer_config_to_json(*back), peer_config_to_json(config));
  auto expect_error = [](json j, const std::string& needle) {
    auto c = peer_config_from_json(j, "p.json");
    ASSERT_FALSE(c.has_value());
    EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().message();
  };
  expect_error({{"peer_counts", {5}}}, "peer_counts");
  expect_error({{"devices", {{{"name", "a"}, {"model", "nope"}, {"hint", {1}}}}}}, "devices[0].model");
  expect_error({{"devices", {{{"name", "a"}, {"model", "cnn_tiny"}, {"hint", {1}}}, {{"name", "b"}, {"model", "cnn_tiny"}, {"hint", {1, 2}}}}}}, "same length");
  expect_error({{"epsilons", {0}}}, "epsilons");
  expect_error({{"rounds", {{"steps", -1}}}}, "rounds.steps");
  expect_error({{"bogus", 1}}, "unknown field 'bogus'");
}

TEST(LaplaceNoise, MeanAbsoluteNoiseIsOneOverEpsilon) {
  const auto images = torch::full({64, 1, 28, 28}, 0.5);
  const auto noised = laplace_noised(images, 20.0, 1);
  EXPECT_NEAR((noised - images).abs().mean().item<double>(), 1.0 / 20, 0.005);
  EXPECT_GE(noised.min().item<double>(), 0.0);
  EXPECT_LE(noised.max().item<double>(), 1.0);
}

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PeerCoordinatorOptions options;
    options.hint_dimensions = 2;
    coordinator_ = PeerCoordinator::start(options).value();
    client_ = std::make_unique<httplib::Client>(coordinator_->url().substr(7));
    for (const auto& [name, hint] : std::vector<std::pair<std::string, std::vector<double>>>{{"a", {0, 0}}, {"b", {1, 0}}, {"c", {9, 9}}}) {
      auto res = client_->Post(("/v1/devices/" + name).c_str(), json{{"hint", hint}}.dump(), "application/json");
      ASSERT_EQ(res->status, 200);
      keys_[name] = {{"X-Device-Key", json::parse(res->body)["key"].get<std::string>()}};
    }
  }
  std::string model_bytes(std::uint64_t seed) {
    auto module = build_module(builtin_zoo().front().arch, seed);
    std::ostringstream out;
    module.save(out);
    return out.str();
  }
  std::unique_ptr<PeerCoordinator> coordinator_;
  std::unique_ptr<httplib::Client> client_;
  std::map<std::string, httplib::Headers> keys_;  // what each device sends its models with
};

TEST_F(CoordinatorTest, RefusesUploadsThatAreNotModels) {
  auto res = client_->Put("/v1/models/peers-1/a/0", keys_["a"], std::string(3136, '\x01'), "application/octet-stream");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(res->body.find("not a TorchScript model"), std::string::npos);
  EXPECT_EQ(client_->Put("/v1/models/peers-1/zzz/0", model_bytes(1), "application/octet-stream")->status, 404);
  EXPECT_EQ(client_->Get("/v1/peers/peers-1/a/0?k=0")->status, 400);
}

TEST_F(CoordinatorTest, NamesTheNearestPeersOnceTheirModelsAreThere) {
  auto waiting = client_->Get("/v1/peers/peers-1/a/0?k=1");
  ASSERT_EQ(waiting->status, 202);  // b is nearest, and has sent nothing yet
  const std::string b0 = model_bytes(2), b1 = model_bytes(3);
  ASSERT_EQ(client_->Put("/v1/models/peers-1/b/0", keys_["b"], b0, "application/octet-stream")->status, 200);
  auto ready = client_->Get("/v1/peers/peers-1/a/0?k=1");
  ASSERT_EQ(ready->status, 200);
  EXPECT_EQ(json::parse(ready->body)["peers"], json::array({"b"}));
  EXPECT_EQ(client_->Get("/v1/peers/peers-1/a/1?k=1")->status, 202);
  // A final model serves every later round.
  ASSERT_EQ(client_->Put("/v1/models/peers-1/b/1?final=1", keys_["b"], b1, "application/octet-stream")->status, 200);
  EXPECT_EQ(client_->Get("/v1/peers/peers-1/a/5?k=1")->status, 200);
  EXPECT_EQ(client_->Get("/v1/models/peers-1/b/0")->body, b0);
  EXPECT_EQ(client_->Get("/v1/models/peers-1/b/7")->body, b1);
  EXPECT_EQ(client_->Get("/v1/models/peers-2/b/0")->status, 404);
  EXPECT_EQ(coordinator_->bytes_uploaded(), b0.size() + b1.size());
}

// Whether any private image appears in `body`, as its raw bytes or as the float32 values a
// model would hold.
bool holds_any_image(const std::string& body, const std::vector<std::string>& images_u8, const std::vector<std::string>& images_f32) {
  for (const auto& image : images_u8) {
    if (body.find(image) != std::string::npos) return true;
  }
  for (const auto& image : images_f32) {
    if (body.find(image) != std::string::npos) return true;
  }
  return false;
}

// Three devices, a few steps: the whole protocol in seconds.
PeerConfig tiny_config() {
  PeerConfig config = default_peer_config();
  config.devices = {{"north", "cnn_tiny", {0, 0}}, {"south", "cnn_tiny", {5, 5}}, {"centre", "cnn_tiny", {2, 2}}};
  config.images_per_device = 60;
  config.eval_images = 50;
  config.teacher = "cnn_tiny";
  config.local.steps = 15;
  config.rounds.steps = 5;
  config.privacy_steps = 5;
  config.max_rounds = 2;
  config.peer_counts = {1, 2};
  config.epsilons = {5};
  config.wait_seconds = 120;
  return config;
}

TEST(PeerProcesses, TheExperimentWritesEveryRowAndAResumedRunGivesTheSameTable) {
  if (!testing::fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  testing::TempDir dir;
  const PeerConfig config = tiny_config();
  auto first = run_peer_experiment(config, dir.file("out"), EDGEFLEET_CLI_PATH);
  ASSERT_TRUE(first.has_value()) << first.status().to_string();
  EXPECT_EQ(first->results.size(), config.devices.size() * peer_scenarios(config).size());
  for (const auto& r : first->results) {
    EXPECT_GT(r.accuracy, 0.0);
    if (scenario_peers(r.scenario) > 0) EXPECT_EQ(r.peers.size(), static_cast<std::size_t>(scenario_peers(r.scenario)));
  }
  EXPECT_GT(first->bytes_uploaded, 0u);
  EXPECT_TRUE(std::filesystem::exists(dir.file("out/table.md")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("out/results.json")));
  auto again = run_peer_experiment(config, dir.file("out"), EDGEFLEET_CLI_PATH);
  ASSERT_TRUE(again.has_value()) << again.status().to_string();
  ASSERT_EQ(again->results.size(), first->results.size());
  for (std::size_t i = 0; i < first->results.size(); ++i) EXPECT_DOUBLE_EQ(again->results[i].accuracy, first->results[i].accuracy);
  PeerConfig other = config;
  other.max_rounds = 3;
  const auto refused = run_peer_experiment(other, dir.file("out"), EDGEFLEET_CLI_PATH);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.status().message().find("another peer config"), std::string::npos);
}

TEST(PeerProcesses, AFailingDeviceFailsTheExperimentWithItsReason) {
  if (!testing::fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  testing::TempDir dir;
  PeerConfig config = tiny_config();
  config.teacher = dir.file("no-such-card.json");  // every device fails at the kd-teacher row
  const auto failed = run_peer_experiment(config, dir.file("out"), EDGEFLEET_CLI_PATH);
  ASSERT_FALSE(failed.has_value());
  EXPECT_NE(failed.status().message().find("failed"), std::string::npos) << failed.status().message();
  EXPECT_NE(failed.status().message().find("no-such-card"), std::string::npos) << failed.status().message();
}

TEST(PeerProcesses, NoRawSampleEverLeavesADeviceProcess) {
  if (!testing::fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  testing::TempDir dir;
  const PeerConfig config = tiny_config();
  testing::write_text(dir.file("peers.json"), peer_config_to_json(config).dump());

  PeerCoordinatorOptions options;
  options.hint_dimensions = 2;
  options.record_traffic = true;
  auto coordinator = PeerCoordinator::start(options).value();
  std::vector<std::thread> devices;
  std::vector<int> exit_codes(config.devices.size(), -1);
  for (std::size_t i = 0; i < config.devices.size(); ++i) {
    devices.emplace_back([&, i] {
      const std::string& name = config.devices[i].name;
      const std::string command = std::string(EDGEFLEET_CLI_PATH) + " peers device " + dir.file("peers.json") + " --device " + name +
                                  " --coordinator " + coordinator->url() + " --work " + dir.file(name) + " > " + dir.file(name + ".log") + " 2>&1";
      exit_codes[i] = std::system(command.c_str());
    });
  }
  for (auto& t : devices) t.join();
  for (std::size_t i = 0; i < exit_codes.size(); ++i) EXPECT_EQ(exit_codes[i], 0) << config.devices[i].name << " failed:\n" << testing::read_text(dir.file(config.devices[i].name + ".log"));

  // Every private image of every device, as stored and as a model would hold it.
  auto train = open_fashion_mnist(FashionMnistSplit::kTrain).value();
  std::vector<std::string> images_u8, images_f32;
  for (std::size_t d = 0; d < config.devices.size(); ++d) {
    for (auto item : device_partition(config, d, train->size())) {
      const Image image = train->load(item).value();
      images_u8.emplace_back(image.pixels.begin(), image.pixels.end());
      std::vector<float> f(image.pixels.begin(), image.pixels.end());
      for (auto& x : f) x /= 255.0f;
      images_f32.emplace_back(reinterpret_cast<const char*>(f.data()), f.size() * sizeof(float));
    }
  }
  // The search finds an image a model carries: the check can fail.
  {
    auto leaky = build_module(builtin_zoo().front().arch, 1);
    std::vector<float> f(images_f32[5].size() / sizeof(float));
    std::memcpy(f.data(), images_f32[5].data(), images_f32[5].size());
    leaky.register_buffer("stolen", torch::from_blob(f.data(), {28, 28}).clone());
    std::ostringstream out;
    leaky.save(out);
    ASSERT_TRUE(holds_any_image(out.str(), images_u8, images_f32));
  }

  const auto traffic = coordinator->traffic();
  int models = 0, results = 0;
  for (const auto& request : traffic) {
    EXPECT_FALSE(holds_any_image(request.body, images_u8, images_f32)) << request.method << " " << request.path;
    if (request.method == "PUT") {
      ++models;
      std::istringstream in(request.body);
      EXPECT_NO_THROW(torch::jit::load(in)) << request.path;
    } else if (request.method == "POST" && request.path.rfind("/v1/results/", 0) == 0) {
      ++results;
      const json r = json::parse(request.body);
      for (const auto& [key, value] : r.items()) EXPECT_FALSE(value.is_array() && key != "peers") << "result field " << key << " is an array";
    } else if (request.method == "POST") {
      EXPECT_EQ(request.path.rfind("/v1/devices/", 0), 0u) << request.path;
    } else {
      EXPECT_EQ(request.method, "GET") << request.path;
    }
  }
  EXPECT_GT(models, 0);
  EXPECT_EQ(results, static_cast<int>(config.devices.size() * peer_scenarios(config).size()));
}

}  // namespace
}  // namespace edgefleet
