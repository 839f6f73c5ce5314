// The per-kernel latency model's arithmetic: the isolated kernels' sum, the in-context scales
// and per-kernel costs, and their JSON form (no timing: coefficients are set by hand).
#include "edgefleet/latency_predictor.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "port/kernel_latency.h"

#include "scripted_nets.h"
#include "test_support.h"

namespace edgefleet {
namespace {

// Every kernel type costs `ms` whatever its size.
LatencyPredictor flat_predictor(double ms) {
  LatencyPredictor p;
  for (const char* type : {"add", "concat", "conv1x1", "convkxk", "dwconv", "elementwise", "linear", "pad", "pool"}) {
    p.optimized.coefficients[type] = {ms, 0.0, 0.0, 0.0};
  }
  return p;
}

TEST(LatencyPredictor, InContextEachTypeIsScaledAndChargedPerKernel) {
  testing::TempDir dir;
  const ModelCard card = save_scripted_classifier(residual_net(), dir.path(), "residual", 5);  // two 3x3 convs, one add
  LatencyPredictor p = flat_predictor(0.1);
  const double isolated = predict_latency_ms(p, card, InferenceGraph::kOptimized).value();
  EXPECT_GT(isolated, 0.3);  // at least the two convs and the add

  for (const auto& [type, c] : p.optimized.coefficients) p.optimized.context[type] = {1.0, 0.0};
  p.optimized.context_call_ms = 0.5;
  EXPECT_NEAR(predict_latency_ms(p, card, InferenceGraph::kOptimized).value(), isolated + 0.5, 1e-9);
  p.optimized.context["convkxk"] = {2.0, 0.0};  // the convs count twice
  EXPECT_NEAR(predict_latency_ms(p, card, InferenceGraph::kOptimized).value(), isolated + 0.5 + 0.2, 1e-9);
  p.optimized.context["add"] = {1.0, 0.05};     // and the add pays 0.05 ms more
  const double in_context = predict_latency_ms(p, card, InferenceGraph::kOptimized).value();
  EXPECT_NEAR(in_context, isolated + 0.5 + 0.2 + 0.05, 1e-9);

  // The JSON form predicts the same.
  const auto read = latency_predictor_from_json(latency_predictor_to_json(p), "test").value();
  EXPECT_NEAR(predict_latency_ms(read, card, InferenceGraph::kOptimized).value(), in_context, 1e-9);
}

// A model is priced by the predictors of the graph it runs; a latency model without frozen-graph
// predictors (written before they were timed) prices both graphs with the optimised ones.
TEST(LatencyPredictor, EachGraphIsPricedByItsOwnPredictors) {
  testing::TempDir dir;
  const ModelCard card = save_scripted_classifier(residual_net(), dir.path(), "residual", 5);
  LatencyPredictor p = flat_predictor(0.1);
  const double optimized = predict_latency_ms(p, card, InferenceGraph::kOptimized).value();
  EXPECT_NEAR(predict_latency_ms(p, card, InferenceGraph::kFrozen).value(), optimized, 1e-12);
  p.frozen = flat_predictor(0.3).optimized;
  const double frozen = predict_latency_ms(p, card, InferenceGraph::kFrozen).value();
  EXPECT_NEAR(frozen, 3 * optimized, 1e-9);
  const auto read = latency_predictor_from_json(latency_predictor_to_json(p), "test").value();
  EXPECT_NEAR(predict_latency_ms(read, card, InferenceGraph::kFrozen).value(), frozen, 1e-9);
  EXPECT_NEAR(predict_latency_ms(read, card, InferenceGraph::kOptimized).value(), optimized, 1e-9);
  // Without a graph named, the one the model's Classifier runs.
  const double chosen = predict_latency_ms(p, card).value();
  EXPECT_TRUE(std::abs(chosen - optimized) < 1e-9 || std::abs(chosen - frozen) < 1e-9) << chosen;
}

// Networks whose measured ms is twice their k x k convs' isolated sum plus their 1x1 convs as
// isolated: with many networks the fit recovers each type's scale; with fewer than two per
// unknown it shares one scale (a per-type fit then priced a whole type at 0).
TEST(LatencyPredictor, ContextFitRecoversEachTypesScaleAndSharesOneWhenNetworksAreFew) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> ms(0.5, 5.0);
  std::vector<NetworkSample> networks;
  for (int i = 0; i < 60; ++i) {
    NetworkSample n;
    const double kxk = ms(rng), pointwise = ms(rng);
    n.sums.predicted_ms = {{"convkxk", kxk}, {"conv1x1", pointwise}};
    n.sums.count = {{"convkxk", 3}, {"conv1x1", 2}};
    n.ms = 2 * kxk + pointwise;
    networks.push_back(n);
  }
  GraphLatency many;
  fit_context(many, networks);
  EXPECT_NEAR(many.context.at("convkxk")[0], 2.0, 0.05);
  EXPECT_NEAR(many.context.at("conv1x1")[0], 1.0, 0.05);
  for (const auto& n : networks) EXPECT_NEAR(predict_from_sums(many, n.sums), n.ms, 0.03 * n.ms);

  GraphLatency few;
  fit_context(few, std::vector<NetworkSample>(networks.begin(), networks.begin() + 10));
  EXPECT_EQ(few.context.at("convkxk")[0], few.context.at("conv1x1")[0]);
  EXPECT_GT(few.context.at("convkxk")[0], 1.2);  // between the two true scales, weighted by the sums
  EXPECT_LT(few.context.at("convkxk")[0], 2.0);
}

// The pull towards the isolated predictors is chosen by cross-validation on the networks: when
// the isolated predictors are right and the timings noisy (every type's true scale 1, each
// network's ms off by up to 30%), a fit free to move 19 coefficients follows the noise and a
// stronger pull predicts unseen networks better; when the networks say exactly that the types
// cost otherwise (the test above), the weakest pull.
TEST(LatencyPredictor, TheContextFitsPullTowardsTheIsolatedPredictorsIsChosenByCrossValidation) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> ms(0.1, 2.0), noise(0.7, 1.3);
  std::vector<NetworkSample> networks;
  for (int i = 0; i < 40; ++i) {
    NetworkSample n;
    double total = 0.0;
    for (const char* type : {"add", "concat", "conv1x1", "convkxk", "dwconv", "elementwise", "linear", "pad", "pool"}) {
      n.sums.predicted_ms[type] = ms(rng);
      n.sums.count[type] = 1 + static_cast<int>(rng() % 8);
      total += n.sums.predicted_ms[type];
    }
    n.ms = total * noise(rng);
    networks.push_back(n);
  }
  GraphLatency noisy;
  fit_context(noisy, networks);
  EXPECT_GT(noisy.context_ridge, 1.0);
  const auto read = latency_predictor_from_json(latency_predictor_to_json(LatencyPredictor{1, noisy, {}}), "test").value();
  EXPECT_EQ(read.optimized.context_ridge, noisy.context_ridge);

  for (auto& n : networks) {
    n.ms = 0.0;
    for (const auto& [type, predicted] : n.sums.predicted_ms) n.ms += (type == "convkxk" ? 2.0 : 1.0) * predicted;
  }
  GraphLatency exact;
  fit_context(exact, networks);
  EXPECT_EQ(exact.context_ridge, 1.0);
  EXPECT_NEAR(exact.context.at("convkxk")[0], 2.0, 0.1);
}

TEST(LatencyPredictor, AModelWithAKernelTheModelLacksIsRefusedByName) {
  testing::TempDir dir;
  const ModelCard card = save_scripted_classifier(residual_net(), dir.path(), "residual", 5);
  LatencyPredictor p = flat_predictor(0.1);
  p.optimized.coefficients.erase("add");
  const auto predicted = predict_latency_ms(p, card, InferenceGraph::kOptimized);
  ASSERT_FALSE(predicted);
  EXPECT_NE(predicted.status().message().find("no 'add' kernel"), std::string::npos);
  EXPECT_EQ(latency_predictor_from_json(nlohmann::json{{"kernels", 3}}, "x.json").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgefleet
