// The inference server and the racing client over loopback: one in-process server per test
// on a free port, two variants of one task (a fast, less accurate cnn_tiny and a slow, more
// accurate resnet_s), and the real `edgefleet serve` process for the signal handling.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "edgefleet/inference_client.h"
#include "edgefleet/inference_server.h"
#include "edgefleet/kserve.h"
#include "edgefleet/model_repository.h"
#include "test_support.h"

namespace edgefleet {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

// A repository with task "digits": fast (cnn_tiny, top-1 0.5) and slow (resnet_s, top-1 0.9).
void write_repository(const TempDir& dir) {
  const auto fast = testing::write_zoo_model(dir.file("models"), "fast", "cnn_tiny", 0.5);
  const auto slow = testing::write_zoo_model(dir.file("models"), "slow", "resnet_s", 0.9);
  ASSERT_TRUE(add_to_repository(dir.file("repo"), "digits", fast).has_value());
  ASSERT_TRUE(add_to_repository(dir.file("repo"), "digits", slow).has_value());
}

ServerOptions test_options(const TempDir& dir) {
  ServerOptions options;
  options.repository = dir.file("repo");
  options.port = 0;
  options.http_threads = 8;
  options.instances_per_variant = 1;
  options.warmup_runs = 4;
  return options;
}

std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// A JSON infer request for one 1x28x28 picture with the given request parameters.
std::string tensor_request(const nlohmann::json& parameters, std::vector<std::int64_t> shape = {1, 1, 28, 28}) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<float> data(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 17) / 17.0f;
  nlohmann::json j{{"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", shape}, {"data", data}}}}};
  if (!parameters.empty()) j["parameters"] = parameters;
  return j.dump();
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_repository(dir);
    start(test_options(dir));
  }
  void start(ServerOptions options) {
    if (server) server->stop();
    auto created = InferenceServer::create(std::move(options));
    ASSERT_TRUE(created.has_value()) << created.status().to_string();
    server = std::move(created).value();
    ASSERT_TRUE(server->start().is_ok());
    http = std::make_unique<httplib::Client>("127.0.0.1", server->port());
  }
  nlohmann::json infer(const std::string& model, const std::string& body, int expected_status = 200) {
    auto res = http->Post("/v2/models/" + model + "/infer", body, "application/json");
    EXPECT_TRUE(res);
    if (!res) return {};
    EXPECT_EQ(res->status, expected_status) << res->body;
    return nlohmann::json::parse(res->body, nullptr, false);
  }

  TempDir dir;
  std::unique_ptr<InferenceServer> server;
  std::unique_ptr<httplib::Client> http;
};

TEST_F(ServerTest, HealthAndMetadataDescribeTheTaskAndItsVariants) {
  EXPECT_EQ(http->Get("/v2/health/live")->status, 200);
  EXPECT_EQ(http->Get("/v2/health/ready")->status, 200);
  EXPECT_EQ(nlohmann::json::parse(http->Get("/v2")->body)["name"], "edgefleet");
  auto res = http->Get("/v2/models/digits");
  ASSERT_EQ(res->status, 200) << res->body;
  const auto meta = nlohmann::json::parse(res->body);
  EXPECT_EQ(meta["versions"], nlohmann::json({"fast", "slow"}));
  EXPECT_EQ(meta["inputs"][0]["shape"], nlohmann::json({-1, 1, 28, 28}));
  EXPECT_EQ(meta["outputs"][0]["shape"], nlohmann::json({-1, 10}));
  EXPECT_EQ(http->Get("/v2/models/digits/versions/slow/ready")->status, 200);
  EXPECT_EQ(http->Get("/v2/models/fast/ready")->status, 200);
  EXPECT_EQ(http->Get("/v2/models/digits/versions/nope")->status, 404);
  EXPECT_EQ(http->Get("/v2/models/nope/ready")->status, 404);
}

TEST_F(ServerTest, WithoutAnSlaTheMostAccurateVariantAnswers) {
  const auto j = infer("digits", tensor_request({}));
  EXPECT_EQ(j["model_name"], "digits");
  EXPECT_EQ(j["model_version"], "slow");
  EXPECT_EQ(j["outputs"][0]["shape"], nlohmann::json({1, 10}));
  EXPECT_EQ(j["outputs"][0]["data"].size(), 10u);
}

TEST_F(ServerTest, TheVariantFollowsTheRequestsBudget) {
  // A generous budget: the accurate variant (related-accurate and static-greedy take it
  // without mdinference's random exploration). A budget the network has used up: the fastest.
  for (const char* policy : {"related-accurate", "static-greedy"}) {
    auto roomy = infer("digits", tensor_request({{"sla_ms", 60000.0}, {"transfer_ms", 0.0}, {"policy", policy}}));
    EXPECT_EQ(roomy["parameters"]["variant"], "slow") << policy;
    EXPECT_EQ(roomy["parameters"]["fits_budget"], true) << policy;
  }
  for (const char* policy : {"mdinference", "related-accurate"}) {
    auto tight = infer("digits", tensor_request({{"sla_ms", 100.0}, {"transfer_ms", 100.0}, {"policy", policy}}));
    EXPECT_EQ(tight["parameters"]["variant"], "fast") << policy;
    EXPECT_EQ(tight["parameters"]["fits_budget"], false) << policy;
    EXPECT_EQ(tight["parameters"]["network_from"], "transfer_ms");
    EXPECT_DOUBLE_EQ(tight["parameters"]["budget_ms"].get<double>(), 0.0);
  }
  // Without transfer_ms the server estimates the network from the request's arrival.
  auto estimated = infer("digits", tensor_request({{"sla_ms", 60000.0}}));
  EXPECT_EQ(estimated["parameters"]["network_from"], "receive time");
  EXPECT_GE(estimated["parameters"]["network_ms"].get<double>(), 0.0);
}

TEST_F(ServerTest, AVariantOrVersionNamePinsIt) {
  auto pinned = infer("fast", tensor_request({{"sla_ms", 60000.0}, {"transfer_ms", 0.0}}));
  EXPECT_EQ(pinned["parameters"]["variant"], "fast");
  auto res = http->Post("/v2/models/digits/versions/fast/infer", tensor_request({}), "application/json");
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(nlohmann::json::parse(res->body)["model_version"], "fast");
}

TEST_F(ServerTest, BinaryTensorsGoBothWays) {
  InferRequest request;
  Tensor t;
  t.name = "input";
  t.shape = {2, 1, 28, 28};
  t.floats.assign(2 * 28 * 28, 0.25f);
  request.inputs.push_back(t);
  request.binary_output = true;
  const EncodedMessage message = encode_infer_request(request, true);
  httplib::Headers headers{{kInferenceHeaderContentLength, std::to_string(message.json_length)}};
  auto res = http->Post("/v2/models/fast/infer", headers, message.body, "application/octet-stream");
  ASSERT_EQ(res->status, 200) << res->body;
  ASSERT_TRUE(res->has_header(kInferenceHeaderContentLength));
  const auto length = std::stoul(res->get_header_value(kInferenceHeaderContentLength));
  auto response = parse_infer_response(res->body, length);
  ASSERT_TRUE(response.has_value()) << response.status().to_string();
  ASSERT_EQ(response->outputs[0].floats.size(), 20u);
  // Two identical inputs, two identical answers.
  for (int c = 0; c < 10; ++c) EXPECT_FLOAT_EQ(response->outputs[0].floats[c], response->outputs[0].floats[10 + c]);
}

TEST_F(ServerTest, EncodedImagesArePreprocessedPerTheChosenCard) {
  testing::write_png(dir.file("picture.png"), 40, 30, 3);
  const auto png = read_file_bytes(dir.file("picture.png"));
  nlohmann::json j{{"inputs", {{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {1}},
                                {"parameters", {{"content_type", "base64"}}},
                                {"data", {base64_encode(std::string(png.begin(), png.end()))}}}}},
                   {"outputs", {{{"name", "logits"}, {"parameters", {{"classification", 3}}}}}}};
  const auto answer = infer("digits", j.dump());
  EXPECT_EQ(answer["outputs"][0]["datatype"], "BYTES");
  EXPECT_EQ(answer["outputs"][0]["shape"], nlohmann::json({1, 3}));
  // The top-3 come best first as "score:index".
  const auto& top = answer["outputs"][0]["data"];
  EXPECT_GE(std::stof(top[0].get<std::string>()), std::stof(top[1].get<std::string>()));
}

TEST_F(ServerTest, BadRequestsGetA4xxWithTheReason) {
  EXPECT_NE(infer("digits", "{oops", 400)["error"].get<std::string>().find("not valid JSON"), std::string::npos);
  EXPECT_NE(infer("digits", tensor_request({}, {1, 3, 28, 28}), 400)["error"].get<std::string>().find("fits no variant"),
            std::string::npos);
  EXPECT_NE(infer("nope", tensor_request({}), 404)["error"].get<std::string>().find("no model 'nope'"), std::string::npos);
  EXPECT_NE(infer("digits", tensor_request({{"policy", "best"}}), 400)["error"].get<std::string>().find("mdinference"),
            std::string::npos);
  nlohmann::json corrupt{{"inputs", {{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {1}}, {"data", {"not an image"}}}}}};
  EXPECT_TRUE(infer("digits", corrupt.dump(), 400).contains("error"));
  nlohmann::json wrong_output = nlohmann::json::parse(tensor_request({}));
  wrong_output["outputs"] = {{{"name", "probabilities"}}};
  EXPECT_NE(infer("digits", wrong_output.dump(), 400)["error"].get<std::string>().find("'logits'"), std::string::npos);
  EXPECT_EQ(http->Get("/v2/no/such/endpoint")->status, 404);
}

TEST_F(ServerTest, ABodyOverTheLimitGets413) {
  ServerOptions options = test_options(dir);
  options.max_body_bytes = 64 * 1024;
  start(options);
  const auto j = infer("digits", tensor_request({}, {30, 1, 28, 28}), 413);
  EXPECT_NE(j["error"].get<std::string>().find("65536"), std::string::npos);
  infer("digits", tensor_request({}));  // a small one still passes
}

TEST_F(ServerTest, ATokenGuardsEverythingButHealth) {
  ServerOptions options = test_options(dir);
  options.token = "s3cret";
  start(options);
  EXPECT_EQ(http->Get("/v2/health/ready")->status, 200);
  EXPECT_EQ(http->Get("/v2/models/digits")->status, 401);
  infer("digits", tensor_request({}), 401);
  http->set_bearer_token_auth("wrong");
  EXPECT_EQ(http->Get("/v2/models/digits")->status, 401);
  http->set_bearer_token_auth("s3cret");
  EXPECT_EQ(http->Get("/v2/models/digits")->status, 200);
  infer("digits", tensor_request({}));
}

TEST_F(ServerTest, VariantsLoadAndUnloadWhileServing) {
  // Requests keep flowing on another thread while the accurate variant leaves and returns.
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::thread traffic([&] {
    httplib::Client c("127.0.0.1", server->port());
    while (!done) {
      auto res = c.Post("/v2/models/digits/infer", tensor_request({}), "application/json");
      if (!res || res->status != 200) ++failures;
    }
  });
  EXPECT_EQ(http->Post("/v2/repository/models/slow/unload", "{}", "application/json")->status, 200);
  EXPECT_EQ(infer("digits", tensor_request({}))["model_version"], "fast");
  EXPECT_EQ(nlohmann::json::parse(http->Get("/v2/models/digits")->body)["versions"], nlohmann::json({"fast"}));
  EXPECT_EQ(infer("slow", tensor_request({}), 404).count("error"), 1u);
  const auto index = nlohmann::json::parse(http->Post("/v2/repository/index", "{}", "application/json")->body);
  EXPECT_EQ(index[1]["state"], "UNAVAILABLE");
  EXPECT_EQ(http->Post("/v2/repository/models/slow/load", "{}", "application/json")->status, 200);
  EXPECT_EQ(infer("digits", tensor_request({}))["model_version"], "slow");
  EXPECT_EQ(http->Post("/v2/repository/models/nope/load", "{}", "application/json")->status, 404);
  done = true;
  traffic.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(ServerTest, ARescanPicksUpNewAndRemovedVariants) {
  const auto extra = testing::write_zoo_model(dir.file("models"), "extra", "mobilenetv2_w035", 0.7);
  ASSERT_TRUE(add_to_repository(dir.file("repo"), "digits", extra).has_value());
  fs::remove_all(dir.file("repo/digits/fast"));
  ASSERT_TRUE(server->sync_repository().is_ok());
  std::set<std::string> names;
  for (const auto& v : server->variants()) names.insert(v.variant);
  EXPECT_EQ(names, (std::set<std::string>{"extra", "slow"}));
}

TEST_F(ServerTest, MetricsCountRequestsAndSelections) {
  infer("digits", tensor_request({}));
  infer("nope", tensor_request({}), 404);
  const std::string text = http->Get("/metrics")->body;
  EXPECT_NE(text.find(R"(edgefleet_requests_total{model="digits",code="200"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(edgefleet_selections_total{variant="slow"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(edgefleet_variant_latency_seconds{variant="fast",stat="mean"})"), std::string::npos) << text;
}

TEST_F(ServerTest, TheClientTakesTheRemoteAnswerWhenItArrivesInTime) {
  testing::write_png(dir.file("picture.png"), 28, 28, 1);
  ClientOptions options;
  options.url = "http://127.0.0.1:" + std::to_string(server->port());
  options.model = "digits";
  options.local_model = dir.file("models/fast.json");
  auto client = InferenceClient::create(options);
  ASSERT_TRUE(client.has_value()) << client.status().to_string();
  auto answer = client.value()->classify(read_file_bytes(dir.file("picture.png")), 60000.0);
  ASSERT_TRUE(answer.has_value()) << answer.status().to_string();
  EXPECT_EQ(answer->source, "remote");
  EXPECT_TRUE(answer->met_sla);
  EXPECT_EQ(answer->logits.size(), 10u);
  EXPECT_GE(answer->top1, 0);
  EXPECT_EQ(answer->remote_parameters["task"], "digits");
  EXPECT_GT(client.value()->transfer_estimate_ms(), 0.0);
}

TEST_F(ServerTest, TheClientFallsBackToItsLocalModelWhenTheNetworkIsTooSlow) {
  testing::write_png(dir.file("picture.png"), 28, 28, 1);
  ClientOptions options;
  options.url = "http://127.0.0.1:" + std::to_string(server->port());
  options.model = "digits";
  options.local_model = dir.file("models/fast.json");
  options.network = "normal:400:0";  // every round trip takes 400 ms
  auto client = InferenceClient::create(options).value();
  auto answer = client->classify(read_file_bytes(dir.file("picture.png")), 150.0);
  ASSERT_TRUE(answer.has_value()) << answer.status().to_string();
  EXPECT_EQ(answer->source, "local");
  EXPECT_EQ(answer->model, "fast");
  EXPECT_FALSE(answer->remote_error.empty());
  EXPECT_DOUBLE_EQ(answer->network_ms, 400.0);
}

TEST_F(ServerTest, AnAdaptiveClientRunsItsLocalModelOnlyWhenARemoteMissIsLikely) {
  testing::write_png(dir.file("picture.png"), 28, 28, 1);
  const auto bytes = read_file_bytes(dir.file("picture.png"));
  ClientOptions options;
  options.url = "http://127.0.0.1:" + std::to_string(server->port());
  options.model = "digits";
  options.local_model = dir.file("models/fast.json");
  options.duplicate_above = 0.05;
  options.network = "normal:40:5";  // round trips of 40 +- 5 ms
  auto client = InferenceClient::create(options).value();
  // A generous SLA: after the first (measured) request a miss is unlikely, so it goes remote alone.
  int local_runs = 0;
  for (int i = 0; i < 8; ++i) {
    auto answer = client->classify(bytes, 5000.0);
    ASSERT_TRUE(answer.has_value()) << answer.status().to_string();
    EXPECT_EQ(answer->source, "remote");
    local_runs += answer->local_ran;
  }
  EXPECT_EQ(local_runs, 1) << "only the first request, before anything was measured, races";
  // An SLA the network alone overruns: a miss is near certain, so every request races and
  // the local answer is used.
  for (int i = 0; i < 3; ++i) {
    auto answer = client->classify(bytes, 20.0);
    ASSERT_TRUE(answer.has_value()) << answer.status().to_string();
    EXPECT_TRUE(answer->local_ran);
    EXPECT_EQ(answer->source, "local");
  }
  options.duplicate_above = 1.0;
  EXPECT_EQ(InferenceClient::create(options).status().code(), StatusCode::kInvalidArgument);
}

TEST(InferenceClient, FailsWhenNeitherSideCanAnswer) {
  TempDir dir;
  testing::write_png(dir.file("picture.png"), 28, 28, 1);
  ClientOptions options;
  options.url = "http://127.0.0.1:1";  // nothing listens there
  options.model = "digits";
  options.timeout_ms = 2000;
  auto client = InferenceClient::create(options).value();
  auto answer = client->classify(read_file_bytes(dir.file("picture.png")), 100.0);
  EXPECT_FALSE(answer.has_value());
}

TEST(InferenceClient, RejectsABadNetworkSpecOrUrl) {
  ClientOptions options;
  options.model = "digits";
  options.network = "normal:abc";
  EXPECT_EQ(InferenceClient::create(options).status().code(), StatusCode::kInvalidArgument);
  options.network = "device:no-such-device";
  EXPECT_EQ(InferenceClient::create(options).status().code(), StatusCode::kNotFound);
  options.network = "";
  options.url = "ftp://example";
  EXPECT_EQ(InferenceClient::create(options).status().code(), StatusCode::kInvalidArgument);
}

TEST(InferenceServer, RefusesAnEmptyOrInvalidRepository) {
  TempDir dir;
  ServerOptions options;
  options.repository = dir.file("missing");
  EXPECT_EQ(InferenceServer::create(options).status().code(), StatusCode::kNotFound);
  fs::create_directories(dir.file("empty"));
  options.repository = dir.file("empty");
  EXPECT_EQ(InferenceServer::create(options).status().code(), StatusCode::kInvalidArgument);
  fs::create_directories(dir.file("bad/task/variant"));
  options.repository = dir.file("bad");
  EXPECT_FALSE(InferenceServer::create(options).has_value());
}

// ---- the real `edgefleet serve` process ----

TEST(ServeCommand, ServesWithATokenUntilSigtermAndThenExitsCleanly) {
  TempDir dir;
  write_repository(dir);
  testing::write_png(dir.file("picture.png"), 28, 28, 1);
  testing::ServeProcess server(dir, dir.file("repo"), {"--threads", "4", "--token", "s3cret"});
  const int port = server.port();
  ASSERT_GT(port, 0);
  httplib::Client http("127.0.0.1", port);
  EXPECT_EQ(http.Get("/v2/health/ready")->status, 200);
  EXPECT_EQ(http.Get("/v2/models/digits")->status, 401);
  const auto infer = [&](const std::string& token) {
    const std::string command = std::string(EDGEFLEET_CLI_PATH) + " infer --url http://127.0.0.1:" + std::to_string(port) +
                                " --model digits --token " + token + " " + dir.file("picture.png") + " 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    std::string output;
    char buffer[4096];
    while (fgets(buffer, sizeof buffer, pipe)) output += buffer;
    return std::make_pair(pclose(pipe), output);
  };
  const auto [denied_status, denied] = infer("wrong");
  EXPECT_NE(denied_status, 0);
  EXPECT_NE(denied.find("401"), std::string::npos) << denied;
  const auto [status, output] = infer("s3cret");
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("remote"), std::string::npos) << output;
  EXPECT_NE(output.find("slow"), std::string::npos) << output;
  const int exit_status = server.terminate();
  ASSERT_TRUE(WIFEXITED(exit_status));
  EXPECT_EQ(WEXITSTATUS(exit_status), 0);
  const std::string text = server.stderr_text();
  EXPECT_NE(text.find("received SIGTERM"), std::string::npos) << text;
}

}  // namespace
}  // namespace edgefleet
