// Inference throughput of every built-in zoo model (and any model given with --model=...)
// through edgefleet's Classifier, batch 1 and 32. bench/compare_python.sh runs this and the
// Python baseline in the same run and prints the ratio.
#include <benchmark/benchmark.h>

#include <cstring>
#include <iostream>

#include "edgefleet/classifier.h"
#include "edgefleet/zoo.h"

namespace {

void run_inference(benchmark::State& state, edgefleet::Classifier* model, int batch) {
  const auto& in = model->card().input;
  std::vector<float> input(static_cast<std::size_t>(batch) * in.channels() * in.height * in.width, 0.5f);
  for (auto _ : state) {
    auto logits = model->infer(input.data(), batch);
    if (!logits) {
      state.SkipWithError(logits.status().to_string().c_str());
      break;
    }
    benchmark::DoNotOptimize(logits->data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> models;
  int threads = 0;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--model=", 8) == 0) {
      models.emplace_back(argv[i] + 8);
    } else if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (models.empty()) {
    for (const auto& entry : edgefleet::builtin_zoo()) models.push_back(entry.name);
  }
  std::vector<std::unique_ptr<edgefleet::Classifier>> loaded;
  for (const auto& name : models) {
    auto card = edgefleet::resolve_model(name);
    if (!card) {
      std::cerr << "bench: " << card.status().to_string() << "\n";
      return 1;
    }
    auto model = edgefleet::load_classifier(*card, {true, threads});
    if (!model) {
      std::cerr << "bench: " << model.status().to_string() << "\n";
      return 1;
    }
    loaded.push_back(std::move(*model));
    auto* raw = loaded.back().get();
    for (int batch : {1, 32}) {
      benchmark::RegisterBenchmark((card->name + "/batch:" + std::to_string(batch)).c_str(),
                                   [raw, batch](benchmark::State& state) { run_inference(state, raw, batch); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(1.0);
    }
  }
  int count = static_cast<int>(rest.size());
  benchmark::Initialize(&count, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
