// The server's transport-free core: selection, input checks, the queue's refusal and the
// response, without HTTP.
#include "serve/inference_core.h"

#include <gtest/gtest.h>

#include "edgefleet/encode.h"
#include "edgefleet/zoo.h"
#include "test_support.h"

namespace edgefleet {
namespace {

class InferenceCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto zoo = builtin_zoo();
    ASSERT_GE(zoo.size(), 2u);
    const ModelCard small = testing::write_zoo_model(dir_.file("models"), "small", zoo[0].name, 0.80);
    const ModelCard large = testing::write_zoo_model(dir_.file("models"), "large", zoo[1].name, 0.90);
    ASSERT_TRUE(add_to_repository(dir_.file("repo"), "task", small).has_value());
    ASSERT_TRUE(add_to_repository(dir_.file("repo"), "task", large).has_value());
    registry_ = std::make_unique<VariantRegistry>(RegistryOptions{dir_.file("repo"), false, 1, 1, 4, nullptr, {}});
    ASSERT_TRUE(registry_->sync().is_ok());
  }

  std::unique_ptr<InferenceCore> core(InferenceCoreOptions options = {}) {
    auto core = InferenceCore::create(options, *registry_, metrics_);
    EXPECT_TRUE(core.has_value()) << core.status().to_string();
    return std::move(core).value();
  }

  static InferRequest zeros(std::vector<std::int64_t> shape) {
    InferRequest request;
    Tensor t;
    t.name = "input";
    t.shape = shape;
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    t.floats.assign(static_cast<std::size_t>(n), 0.f);
    request.inputs.push_back(std::move(t));
    return request;
  }

  testing::TempDir dir_;
  std::unique_ptr<VariantRegistry> registry_;
  ServerMetrics metrics_;
};

TEST_F(InferenceCoreTest, WithoutAnSlaTheMostAccurateVariantAnswers) {
  auto response = core()->infer(zeros({2, 1, 28, 28}), {"task", "", 0.0});
  ASSERT_TRUE(response.has_value()) << response.status().to_string();
  EXPECT_EQ(response->model_version, "large");
  EXPECT_EQ(response->parameters["policy"], "pinned");
  ASSERT_EQ(response->outputs.size(), 1u);
  EXPECT_EQ(response->outputs[0].shape, (std::vector<std::int64_t>{2, 10}));
  EXPECT_EQ(response->outputs[0].floats.size(), 20u);
}

TEST_F(InferenceCoreTest, APinnedVersionRunsThatVariantWhateverTheSla) {
  InferRequest request = zeros({1, 1, 28, 28});
  request.parameters["sla_ms"] = 1e6;
  auto response = core()->infer(request, {"task", "small", 0.0});
  ASSERT_TRUE(response.has_value()) << response.status().to_string();
  EXPECT_EQ(response->model_version, "small");
}

TEST_F(InferenceCoreTest, ANetworkTimeOverTheSlaRunsTheFastestVariantAndSaysItDoesNotFit) {
  InferRequest request = zeros({1, 1, 28, 28});
  request.parameters["sla_ms"] = 10.0;
  request.parameters["transfer_ms"] = 50.0;
  auto response = core()->infer(request, {"task", "", 0.0});
  ASSERT_TRUE(response.has_value()) << response.status().to_string();
  EXPECT_FALSE(response->parameters["fits_budget"].get<bool>());
  EXPECT_EQ(response->parameters["network_from"], "transfer_ms");
  EXPECT_DOUBLE_EQ(response->parameters["budget_ms"].get<double>(), -40.0);
}

// A budget that is positive but shorter than any run (here 1 us) is the same case as none at
// all: the fallback runs and answers, rather than a 504 for a deadline that was never reachable.
TEST_F(InferenceCoreTest, ABudgetShorterThanAnyRunGetsTheFallbackNotA504) {
  auto c = core();
  for (int i = 0; i < 5; ++i) {
    InferRequest request = zeros({1, 1, 28, 28});
    request.parameters["sla_ms"] = 50.001;
    request.parameters["transfer_ms"] = 50.0;
    auto response = c->infer(request, {"task", "", 0.0});
    ASSERT_TRUE(response.has_value()) << response.status().to_string();
    EXPECT_FALSE(response->parameters["fits_budget"].get<bool>());
  }
}

TEST_F(InferenceCoreTest, AnAstronomicalSlaIsServedLikeAnyRoomyOne) {
  InferRequest request = zeros({1, 1, 28, 28});
  request.parameters["sla_ms"] = 1e300;
  auto response = core()->infer(request, {"task", "", 0.0});
  ASSERT_TRUE(response.has_value()) << response.status().to_string();
  EXPECT_EQ(response->model_version, "large");
}

TEST_F(InferenceCoreTest, WithoutTransferMsTheNetworkTimeIsTwiceTheReceiveTime) {
  InferRequest request = zeros({1, 1, 28, 28});
  request.parameters["sla_ms"] = 1000.0;
  auto response = core()->infer(request, {"task", "", 7.5});
  ASSERT_TRUE(response.has_value()) << response.status().to_string();
  EXPECT_DOUBLE_EQ(response->parameters["network_ms"].get<double>(), 15.0);
}

TEST_F(InferenceCoreTest, RequestsThatFitNoModelAreRefusedWithTheRightCode) {
  auto c = core();
  EXPECT_EQ(c->infer(zeros({1, 3, 28, 28}), {"task", "", 0.0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->infer(zeros({1, 1, 28, 28}), {"nothing", "", 0.0}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(c->infer(zeros({1, 1, 28, 28}), {"task", "nothing", 0.0}).status().code(), StatusCode::kNotFound);
  InferRequest infinite = zeros({1, 1, 28, 28});
  infinite.inputs[0].floats[3] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(c->infer(infinite, {"task", "", 0.0}).status().code(), StatusCode::kInvalidArgument);
  InferRequest bad_policy = zeros({1, 1, 28, 28});
  bad_policy.parameters["policy"] = "nope";
  EXPECT_EQ(c->infer(bad_policy, {"task", "", 0.0}).status().code(), StatusCode::kInvalidArgument);
  InferRequest negative_sla = zeros({1, 1, 28, 28});
  negative_sla.parameters["sla_ms"] = -1;
  EXPECT_EQ(c->infer(negative_sla, {"task", "", 0.0}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(InferenceCoreTest, TheResponseSaysWhereTheTimeWentAndWhichBatchItRanIn) {
  auto response = core()->infer(zeros({3, 1, 28, 28}), {"task", "small", 0.0});
  ASSERT_TRUE(response.has_value()) << response.status().to_string();
  const auto& p = response->parameters;
  EXPECT_EQ(p["batch_items"], 3);
  EXPECT_GE(p["queue_ms"].get<double>(), 0.0);
  EXPECT_GT(p["infer_ms"].get<double>(), 0.0);
  EXPECT_GE(p["server_ms"].get<double>(), p["infer_ms"].get<double>());
}

TEST_F(InferenceCoreTest, PicturesArePreprocessedPerTheChosenCardAndRankedOnRequest) {
  const auto png = encode_image(testing::make_test_photo(64, 48, 3), {ImageFormat::kPng}).value();
  InferRequest request;
  Tensor t;
  t.name = "image";
  t.datatype = "BYTES";
  t.bytes = {std::string(png.begin(), png.end())};
  request.inputs.push_back(t);
  request.outputs.push_back({"logits", false, 3});
  auto response = core()->infer(request, {"task", "", 0.0});
  ASSERT_TRUE(response.has_value()) << response.status().to_string();
  const Tensor& out = response->outputs.at(0);
  EXPECT_EQ(out.datatype, "BYTES");
  ASSERT_EQ(out.bytes.size(), 3u);
  double previous = 1e300;
  for (const auto& entry : out.bytes) {  // "score:index", best first
    const double score = std::stod(entry.substr(0, entry.find(':')));
    EXPECT_LE(score, previous);
    previous = score;
  }

  InferRequest corrupt = request;
  corrupt.inputs[0].bytes = {"not a picture"};
  EXPECT_EQ(core()->infer(corrupt, {"task", "", 0.0}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(InferenceCoreTest, MetadataListsEveryVariantAndRefusesUnknownVersions) {
  auto c = core();
  auto meta = c->metadata("task", "");
  ASSERT_TRUE(meta.has_value());
  EXPECT_EQ(meta->at("versions").size(), 2u);
  EXPECT_EQ(c->metadata("task", "zzz").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(c->metadata("zzz", "").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(c->ready("task", "small"));
  EXPECT_FALSE(c->ready("task", "zzz"));
  EXPECT_EQ(c->metric_label("task"), "task");
  EXPECT_EQ(c->metric_label("made up by a client"), "");
}

TEST_F(InferenceCoreTest, AnUnknownDefaultPolicyIsRefusedAtCreation) {
  InferenceCoreOptions options;
  options.policy = "nope";
  EXPECT_EQ(InferenceCore::create(options, *registry_, metrics_).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgefleet
