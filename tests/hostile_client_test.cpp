// Regression tests for what a hostile client found (one test per finding): requests that
// ended the server, bodies that exhausted its memory or bypassed its limit, silent wrong
// answers, metrics one request could break, slow clients that starved health checks,
// decompression amplification, the peer coordinator's open doors, HTTP framing, the
// stability lab's input handling and numbers out of range in configs. The servers are real
// `edgefleet serve` processes on loopback, spoken to with raw bytes where a client library
// would clean the request up.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <thread>

#include "core/elapsed.h"
#include "edgefleet/dataset.h"
#include "edgefleet/device_profile.h"
#include "edgefleet/model_repository.h"
#include "edgefleet/peer_coordinator.h"
#include "edgefleet/pipeline.h"
#include "edgefleet/port.h"
#include "edgefleet/results_store.h"
#include "test_support.h"

namespace edgefleet {
namespace {

using nlohmann::json;
using testing::raw_http;
using testing::ServeProcess;
using testing::TempDir;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A repository with task "digits" of one fast variant.
std::string write_repository(const TempDir& dir) {
  const auto fast = testing::write_zoo_model(dir.file("models"), "fast", "cnn_tiny", 0.5);
  EXPECT_TRUE(add_to_repository(dir.file("repo"), "digits", fast).has_value());
  return dir.file("repo");
}

int status_of(const std::string& answer) {
  if (answer.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::atoi(answer.c_str() + 9);
}

std::string body_of(const std::string& answer) {
  const auto at = answer.find("\r\n\r\n");
  return at == std::string::npos ? "" : answer.substr(at + 4);
}

std::string get(const std::string& path, const std::string& extra_headers = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra_headers + "\r\n";
}

std::string post(const std::string& path, const std::string& body, const std::string& content_type = "application/json") {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// A JSON infer request for `n` 1x28x28 pictures.
std::string tensor_request(int n, const std::string& value = "0.5") {
  std::string data;
  for (int i = 0; i < n * 784; ++i) data += (i ? "," : "") + value;
  return R"({"inputs":[{"name":"input","datatype":"FP32","shape":[)" + std::to_string(n) + R"(,1,28,28],"data":[)" + data + "]}]}";
}

class HostileClient : public ::testing::Test {
 protected:
  void start(const std::vector<std::string>& args = {}, const std::vector<std::string>& env = {}) {
    server = std::make_unique<ServeProcess>(dir, repository, args, env);
    ASSERT_GT(server->port(), 0);
  }
  std::string send(const std::string& bytes, int timeout_ms = 5000) { return raw_http(server->port(), bytes, timeout_ms); }

  TempDir dir;
  std::string repository = write_repository(dir);
  std::unique_ptr<ServeProcess> server;
};

// Finding 1: the decoded path reached a JSON message whose dump threw, uncaught.
TEST_F(HostileClient, InvalidUtf8InThePathCannotEndTheServer) {
  start({}, {"EDGEFLEET_TOKEN=s3cret"});
  const std::string bearer = "Authorization: Bearer s3cret\r\n";
  EXPECT_EQ(status_of(send(get("/%ff"))), 401);
  EXPECT_EQ(status_of(send(get("/%ff", bearer))), 404);
  EXPECT_EQ(status_of(send(get("/v2/health/%ff"))), 404);  // health skips the token
  for (const char* path : {"/v2/models/%ff", "/v2/models/%ff/ready", "/v2/models/digits/versions/%ff"}) {
    const std::string answer = send(get(path, bearer));
    EXPECT_EQ(status_of(answer), 404) << path << ": " << answer;
    EXPECT_TRUE(json::parse(body_of(answer), nullptr, false).contains("error")) << answer;
  }
  for (const char* path : {"/v2/models/%ff/infer", "/v2/repository/models/%ff/load", "/v2/repository/models/%ff/unload"}) {
    std::string request = post(path, tensor_request(1));
    request.insert(request.find("\r\n") + 2, bearer);
    EXPECT_EQ(status_of(send(request)), 404) << path;
  }
  EXPECT_TRUE(server->alive());
  EXPECT_EQ(status_of(send(get("/v2/health/live"))), 200);
}

// Finding 2: each HTTP thread kept a JSON parser sized for the largest body it saw.
TEST_F(HostileClient, LargeBodiesUnderTheLimitLeaveNoMemoryBehind) {
  start({"--max-body-mb", "32"});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(status_of(send(post("/v2/models/digits/infer", tensor_request(2)))), 200);
  const long baseline = server->rss_kb();
  // ~24 MB of JSON numbers whose shape does not match: parsed in full, then refused.
  std::string big = tensor_request(1);
  std::string padding;
  for (int i = 0; i < 3'000'000; ++i) padding += "0.123456,";
  big.insert(big.find("[0.5") + 1, padding);
  ASSERT_GT(big.size(), 24u << 20);
  const std::string request = post("/v2/models/digits/infer", big);
  const auto round = [&] {
    std::vector<std::thread> clients;
    std::atomic<int> refused{0};
    for (int c = 0; c < 6; ++c) {
      clients.emplace_back([&] {
        for (int r = 0; r < 3; ++r) refused += status_of(raw_http(server->port(), request, 30000)) == 400;
      });
    }
    for (auto& t : clients) t.join();
    EXPECT_EQ(refused, 18);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return server->rss_kb();
  };
  // The process keeps a working heap for reuse (core/allocator.h), so some of the bodies'
  // peak stays; what must not happen is memory that grows with every round (432 MB of bodies
  // per round; without giving memory back the first round alone kept 340 MB of them).
  const long first = round();
  const long second = round();
  std::cout << "server RSS: " << baseline << " kB before, " << first << " kB after 18 bodies of 24 MB, " << second
            << " kB after 18 more\n";
  EXPECT_LE(first - baseline, 160 * 1024) << "baseline " << baseline << " kB, after 18 bodies of 24 MB " << first << " kB";
  // Per-thread arenas leave a few tens of MB of spread between rounds (a 20 MB step was seen
  // under the full suite on 2 cores); a leak keeps a good part of the 432 MB of each round.
  EXPECT_LE(second - first, 64 * 1024) << "after one round " << first << " kB, after two " << second << " kB";
}

// Finding 3: a chunked body was read whole before the limit was checked; a declared length
// over the limit was read and discarded, or waited for.
TEST_F(HostileClient, BodiesOverTheLimitAreRefusedBeforeTheyAreRead) {
  start({"--max-body-mb", "1"});
  for (const char* length : {"104857600", "-1", "100000000000000000000000"}) {
    const auto t0 = Clock::now();
    const std::string answer =
        send(std::string("POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ") + length + "\r\n\r\n", 10000);
    EXPECT_EQ(status_of(answer), std::string(length) == "-1" ? 400 : 413) << length << ": " << answer;
    EXPECT_LT(seconds_since(t0), 2.0) << length;
  }
  // 1.5 MiB in chunks of 64 KiB and then nothing: the 413 must come without the end.
  std::string chunked = "POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunk(65536, '1');
  for (int i = 0; i < 24; ++i) chunked += "10000\r\n" + chunk + "\r\n";
  const auto t0 = Clock::now();
  const std::string answer = send(chunked, 10000);
  EXPECT_EQ(status_of(answer), 413) << answer.substr(0, 300);
  EXPECT_LT(seconds_since(t0), 3.0);
  EXPECT_TRUE(server->alive());
}

// Finding 4: infinite or NaN inputs gave 200 with null or NaN logits.
TEST_F(HostileClient, NonFiniteInputsAreRefused) {
  start();
  const std::string infinite = send(post("/v2/models/digits/infer", tensor_request(1, "1e300")));
  EXPECT_EQ(status_of(infinite), 400) << infinite;
  EXPECT_NE(body_of(infinite).find("not a finite"), std::string::npos) << infinite;
  std::string binary(784 * 4, '\0');
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(binary.data() + 4 * 17, &nan, 4);
  const std::string header = R"({"inputs":[{"name":"input","datatype":"FP32","shape":[1,1,28,28],"parameters":{"binary_data_size":3136}}]})";
  std::string request = post("/v2/models/digits/infer", header + binary, "application/octet-stream");
  request.insert(request.find("\r\n") + 2, "Inference-Header-Content-Length: " + std::to_string(header.size()) + "\r\n");
  EXPECT_EQ(status_of(send(request)), 400);
}

// Finding 5: request text became label values (invalid UTF-8 broke every later scrape, and
// each unknown name added a series).
TEST_F(HostileClient, HostileNamesCannotBreakOrGrowTheMetrics) {
  start();
  send(post("/v2/models/%ff/infer", "x"));
  for (int i = 0; i < 50; ++i) send(post("/v2/models/nope" + std::to_string(i) + "/infer", "x"));
  send(post("/v2/models/digits/infer", tensor_request(1)));
  const std::string metrics = body_of(send(get("/metrics")));
  EXPECT_EQ(metrics.find('\xff'), std::string::npos);
  EXPECT_EQ(metrics.find("nope"), std::string::npos);
  EXPECT_NE(metrics.find(R"(edgefleet_requests_total{model="digits",code="200"} 1)"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(edgefleet_requests_total{model="",code="400"} 51)"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("_ms{"), std::string::npos) << "metrics in base units (seconds)";
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "promtool is not installed";
  const std::string file = dir.file("metrics.txt");
  std::ofstream(file) << metrics;
  EXPECT_EQ(std::system(("promtool check metrics < " + file + " > " + dir.file("lint.txt") + " 2>&1").c_str()), 0)
      << std::ifstream(dir.file("lint.txt")).rdbuf();
}

// Finding 6: slow clients held every HTTP thread, and health checks timed out.
TEST_F(HostileClient, SlowClientsDoNotStarveHealthChecks) {
  start({"--read-timeout", "5"});
  std::atomic<bool> done{false};
  std::vector<std::thread> slow;
  for (int c = 0; c < 100; ++c) {
    // Half a request line, then silence: each holds a connection until the read timeout.
    slow.emplace_back([&] { raw_http(server->port(), "GET /v2/health/live HTTP/1.1\r\nX-a: ", 3000); });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  double worst = 0;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = Clock::now();
    EXPECT_EQ(status_of(raw_http(server->port(), get("/v2/health/live"), 5000, "127.0.0.2")), 200);
    worst = std::max(worst, seconds_since(t0));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_LT(worst, 1.0) << "health answered in " << worst << " s with 100 slow clients connected";
  for (auto& t : slow) t.join();
}

// Finding 7: a small PNG of 100 megapixels decoded to ~390 MB per request.
TEST_F(HostileClient, PicturesOverTheServersPixelLimitAreRefusedFromTheirHeader) {
  start({"--max-image-megapixels", "1"});
  testing::write_png(dir.file("big.png"), 1500, 1000, 1);
  const std::string png = testing::read_text(dir.file("big.png"));
  const std::string header = R"({"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":)" +
                             std::to_string(png.size() + 4) + "}}]}";
  const auto length = static_cast<std::uint32_t>(png.size());
  std::string request = post("/v2/models/digits/infer", header + std::string(reinterpret_cast<const char*>(&length), 4) + png,
                             "application/octet-stream");
  request.insert(request.find("\r\n") + 2, "Inference-Header-Content-Length: " + std::to_string(header.size()) + "\r\n");
  const std::string answer = send(request);
  EXPECT_EQ(status_of(answer), 400) << answer;
  EXPECT_NE(body_of(answer).find("over the limit of 1000000"), std::string::npos) << answer;
}

// Finding 3, continued: a refused request's unread body must not be read as the next request.
TEST_F(HostileClient, ARefusedRequestsBodyIsNotReadAsAnotherRequest) {
  start({}, {"EDGEFLEET_TOKEN=s3cret"});
  const std::string smuggled = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n";
  // Keep-alive (no "Connection: close"), and the body sent after the headers were read: it is
  // then still on the connection when the refusal has been written.
  const std::string answer = raw_http(server->port(), "POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                                          std::to_string(smuggled.size()) + "\r\n\r\n",
                                      3000, "", smuggled);
  EXPECT_EQ(status_of(answer), 401) << answer;
  EXPECT_EQ(answer.find("\"live\""), std::string::npos) << "the body was served as a request: " << answer;
}

// Finding 9: a POST without a body waited 30 s for one, then answered 400.
TEST_F(HostileClient, APostWithoutABodyIsAnEmptyBody) {
  start();
  const auto t0 = Clock::now();
  const std::string answer = send("POST /v2/repository/models/fast/load HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_of(answer), 200) << answer;
  EXPECT_LT(seconds_since(t0), 5.0);
}

// Finding 14: a card without sha256 loads, but not silently.
TEST_F(HostileClient, ACardWithoutAHashIsReportedOrRefused) {
  const fs::path card = fs::path(repository) / "digits" / "fast" / "fast.json";
  json j = json::parse(std::ifstream(card));
  j.erase("sha256");
  std::ofstream(card) << j.dump();
  start();
  EXPECT_NE(server->stderr_text().find("loaded unverified"), std::string::npos) << server->stderr_text();
  server->terminate();
  ServeProcess strict(dir, repository, {"--require-sha256"});
  EXPECT_EQ(strict.port(), 0);
  EXPECT_NE(strict.stderr_text().find("no sha256"), std::string::npos) << strict.stderr_text();
}

// Finding 8: anyone could read or overwrite a device's models, nothing was ever evicted,
// and the coordinator could not bind an address other devices reach.
class Coordinator : public ::testing::Test {
 protected:
  void SetUp() override {
    model = testing::write_zoo_model(dir.file("m"), "m", "cnn_tiny", 0.5);
    bytes = testing::read_text(model.model_path());
    start(3);
  }
  // A coordinator expecting this many devices (replacing the one running).
  void start(int expected_devices) {
    PeerCoordinatorOptions options;
    options.hint_dimensions = 2;
    options.token = "t0ken";
    options.expected_devices = expected_devices;
    coordinator = PeerCoordinator::start(options).value();
    http = std::make_unique<httplib::Client>(coordinator->url().substr(7));
    http->set_bearer_token_auth("t0ken");
  }
  std::string register_device(const std::string& name, double x) {
    auto res = http->Post(("/v1/devices/" + name).c_str(), json{{"hint", {x, 0.0}}}.dump(), "application/json");
    EXPECT_EQ(res->status, 200) << res->body;
    return json::parse(res->body)["key"].get<std::string>();
  }
  int put(const std::string& device, int round, const std::string& key) {
    return http->Put(("/v1/models/s/" + device + "/" + std::to_string(round)).c_str(), {{"X-Device-Key", key}}, bytes,
                     "application/octet-stream")
        ->status;
  }

  TempDir dir;
  std::unique_ptr<PeerCoordinator> coordinator;
  std::unique_ptr<httplib::Client> http;
  ModelCard model;
  std::string bytes;
};

TEST_F(Coordinator, EveryRequestNeedsTheToken) {
  httplib::Client anonymous(coordinator->url().substr(7));
  EXPECT_EQ(anonymous.Post("/v1/devices/a", R"({"hint": [0, 0]})", "application/json")->status, 401);
  EXPECT_EQ(anonymous.Get("/v1/models/s/a/0")->status, 401);
}

TEST_F(Coordinator, ADeviceWritesOnlyItsOwnModels) {
  const std::string a = register_device("a", 0), b = register_device("b", 1);
  EXPECT_EQ(put("a", 0, a), 200);
  EXPECT_EQ(put("a", 1, b), 403);   // b cannot poison a's round
  EXPECT_EQ(put("a", 1, ""), 403);
  EXPECT_EQ(http->Post("/v1/devices/a", R"({"hint": [5, 5]})", "application/json")->status, 409);  // nor take its name
  EXPECT_EQ(http->Post("/v1/results/s/a", {{"X-Device-Key", b}}, "{}", "application/json")->status, 403);
}

TEST_F(Coordinator, RoundsNoDeviceCanAskForAreEvicted) {
  start(2);
  const std::string a = register_device("a", 0), b = register_device("b", 1);
  for (int round = 0; round < 20; ++round) ASSERT_EQ(put("a", round, a), 200);
  // b has sent nothing: it will ask for a's round 0; a's latest is kept too.
  EXPECT_EQ(coordinator->bytes_held(), 2 * bytes.size());
  EXPECT_EQ(http->Get("/v1/models/s/a/0")->status, 200);
  EXPECT_EQ(http->Get("/v1/models/s/a/19")->status, 200);
  EXPECT_EQ(put("b", 0, b), 200);
  EXPECT_EQ(http->Post("/v1/results/s/a", {{"X-Device-Key", a}}, "{}", "application/json")->status, 200);
  EXPECT_EQ(http->Post("/v1/results/s/b", {{"X-Device-Key", b}}, "{}", "application/json")->status, 200);
  EXPECT_EQ(coordinator->bytes_held(), 0u);  // every participant reported: nothing is needed
}

TEST_F(Coordinator, ADeviceThatHasNotStartedAScenarioStillGetsItsPeersModels) {
  const std::string a = register_device("a", 0), b = register_device("b", 1), c = register_device("c", 2);
  ASSERT_EQ(put("a", 0, a), 200);
  ASSERT_EQ(put("b", 0, b), 200);
  EXPECT_EQ(http->Post("/v1/results/s/a", {{"X-Device-Key", a}}, "{}", "application/json")->status, 200);
  EXPECT_EQ(http->Post("/v1/results/s/b", {{"X-Device-Key", b}}, "{}", "application/json")->status, 200);
  // c, slower, has not sent anything in s yet: a's and b's models must wait for it.
  ASSERT_EQ(put("c", 0, c), 200);
  EXPECT_EQ(http->Get("/v1/models/s/a/0")->status, 200);
  EXPECT_EQ(http->Get("/v1/models/s/b/0")->status, 200);
  EXPECT_EQ(http->Post("/v1/results/s/c", {{"X-Device-Key", c}}, "{}", "application/json")->status, 200);
  EXPECT_EQ(coordinator->bytes_held(), 0u);
}

// A device slow to start (a loaded machine) registered after the others had finished a
// scenario, was named their peer and got 404 for their models: they had been dropped.
TEST_F(Coordinator, ADeviceThatRegistersAfterAScenarioFinishedStillGetsItsPeersModels) {
  const std::string a = register_device("a", 0), b = register_device("b", 1);
  for (int round = 0; round < 3; ++round) ASSERT_EQ(put("a", round, a), 200);
  ASSERT_EQ(put("b", 0, b), 200);
  EXPECT_EQ(http->Post("/v1/results/s/a", {{"X-Device-Key", a}}, "{}", "application/json")->status, 200);
  EXPECT_EQ(http->Post("/v1/results/s/b", {{"X-Device-Key", b}}, "{}", "application/json")->status, 200);
  EXPECT_EQ(coordinator->bytes_held(), 3 * bytes.size());  // a's rounds 0 and 2, b's 0: for the third
  const std::string c = register_device("c", 2);
  const auto peers = http->Get("/v1/peers/s/c/0?k=2");
  ASSERT_EQ(peers->status, 200) << peers->body;
  EXPECT_EQ(http->Get("/v1/models/s/a/0")->status, 200);
  EXPECT_EQ(http->Get("/v1/models/s/b/0")->status, 200);
  ASSERT_EQ(put("c", 0, c), 200);
  EXPECT_EQ(http->Post("/v1/results/s/c", {{"X-Device-Key", c}}, "{}", "application/json")->status, 200);
  EXPECT_EQ(coordinator->bytes_held(), 0u);  // all three expected devices reported
}

// Finding 10: a symbolic link loop aborted a run; an empty file got a confusing reason.
TEST(HostileInput, ASymlinkLoopAndAnEmptyFileAreReportedPerItem) {
  TempDir dir;
  fs::create_directories(dir.file("data/cat"));
  testing::write_png(dir.file("data/cat/good.png"), 8, 8, 3);
  fs::create_symlink("loop.jpg", dir.file("data/cat/loop.jpg"));
  std::ofstream(dir.file("data/cat/empty.jpg")).close();
  auto data = open_image_folder(dir.file("data"));
  ASSERT_TRUE(data.has_value()) << data.status().to_string();
  ASSERT_EQ((*data)->size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const std::string name = (*data)->item_name(i);
    auto image = (*data)->load(i);
    if (name.find("good") != std::string::npos) {
      EXPECT_TRUE(image.has_value());
    } else if (name.find("loop") != std::string::npos) {
      ASSERT_FALSE(image.has_value());
      EXPECT_NE(image.status().message().find("symbolic links"), std::string::npos) << image.status().to_string();
    } else {
      ASSERT_FALSE(image.has_value());
      EXPECT_NE(image.status().message().find("empty file"), std::string::npos) << image.status().to_string();
      auto bytes = (*data)->load_encoded(i);
      ASSERT_TRUE(bytes.has_value());
      auto through = run_pipeline(parse_pipeline("decode:turbojpeg").value(), *bytes, name);
      ASSERT_FALSE(through.has_value());
      EXPECT_NE(through.status().message().find("empty file"), std::string::npos) << through.status().to_string();
    }
  }
}

// Finding 11: numbers out of range wrapped, overflowed or threw the wrong error.
TEST(HostileInput, NumbersOutOfRangeInConfigsNameTheFieldAndTheRange) {
  json profile = json::parse(R"({"name": "pi", "class": "single-board",
    "hardware": {"soc": "BCM2837", "peak_gflops": 6, "memory_bandwidth_gbs": 8.5, "memory_mb": 2048, "sources": ["spec sheet"]},
    "environment": {"pipeline": "encode:jpeg,quality=85|decode:turbojpeg,dct=islow|resize:opencv,linear,model", "threads": 4},
    "network": {"rtt_ms_mean": 50, "rtt_ms_std": 10}})");
  for (double threads : {1e12, 2147483648.0, 4294967297.0, 2.5}) {
    profile["environment"]["threads"] = threads;
    auto p = device_profile_from_json(profile, "pi.json");
    ASSERT_FALSE(p.has_value()) << threads;
    EXPECT_NE(p.status().message().find("environment.threads' must be a whole number in [0, 1024]"), std::string::npos)
        << p.status().message();
  }
  const json goal = {{"name", "g"}, {"max_macs", 1000000}};
  const auto port_error = [&](json config) {
    if (!config.contains("goals")) config["goals"] = {goal};
    config["base_model"] = "cnn_tiny";
    auto c = port_config_from_json(config, "port.json", builtin_fleet_dir());
    EXPECT_FALSE(c.has_value()) << config.dump();
    if (!c) EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << c.status().to_string();
    return c ? std::string() : c.status().message();
  };
  EXPECT_NE(port_error({{"goals", {{{"name", "g"}, {"max_macs", 1e308}}}}}).find("max_macs must be a whole number in [1, 1e+18]"),
            std::string::npos);
  EXPECT_NE(port_error({{"finetune", {{"steps", 1e15}}}}).find("finetune.steps must be a whole number in [0, 10000000]"),
            std::string::npos);
  EXPECT_NE(port_error({{"mode", 5}}).find("mode must be a string"), std::string::npos);
  EXPECT_NE(port_error({{"threads", -1}}).find("threads must be a whole number in [0, 1024]"), std::string::npos);
}

TEST(HostileInput, ABrokenResultsStoreIsCorruptNotAnInternalError) {
  TempDir dir;
  const std::string path = dir.file("results.sqlite");
  {
    auto store = ResultsStore::open(path).value();
    ASSERT_TRUE(store->begin("run", {{"e", "spec"}}, {{"a.png", 0}}, /*class_count=*/10).is_ok());
    ResultRow row;
    row.prediction.classes = {3};
    row.prediction.probabilities = {0.9f};
    ASSERT_TRUE(store->record({row}).is_ok());
    ASSERT_TRUE(store->table().has_value());
  }
  const auto tamper = [&](const char* sql) {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  };
  for (const char* classes : {"'not json'", "'[12]'", "'[-1]'", "'[\"3\"]'"}) {
    tamper((std::string("UPDATE results SET classes = ") + classes).c_str());
    auto table = ResultsStore::open(path).value()->table();
    ASSERT_FALSE(table.has_value()) << classes;
    EXPECT_EQ(table.status().code(), StatusCode::kCorrupt) << classes << ": " << table.status().to_string();
  }
}

}  // namespace
}  // namespace edgefleet
