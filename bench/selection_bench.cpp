// Selection speed (issue: one decision for a 12-model zoo < 1 us median) and simulator
// throughput (10,000 requests x 7 policies x 20 SLA points < 1 s). The static-greedy decision
// (stage one alone) is the in-run baseline the three-stage decision is compared with.
#include <benchmark/benchmark.h>

#include "edgefleet/simulator.h"

namespace {

const edgefleet::ZooProfile& paper_zoo() {
  static const edgefleet::ZooProfile zoo = edgefleet::read_zoo_profile("paper-table3-fictional").value();
  return zoo;
}

void decide(benchmark::State& state, const char* policy_name) {
  auto policy = edgefleet::make_policy(policy_name).value();
  edgefleet::Rng rng(1);
  double network = 0.0;
  for (auto _ : state) {
    network = network > 200 ? 0.0 : network + 7.3;  // sweep budgets: all three stages get exercised
    benchmark::DoNotOptimize(policy->select(paper_zoo().variants, {250.0, network}, rng));
  }
}
BENCHMARK_CAPTURE(decide, mdinference, "mdinference");
BENCHMARK_CAPTURE(decide, static_greedy, "static-greedy");
BENCHMARK_CAPTURE(decide, related_accurate, "related-accurate");

void simulate_sweep(benchmark::State& state) {
  auto network = edgefleet::parse_network_model("normal:100:50").value();
  edgefleet::SimulationConfig config;
  for (int i = 0; i < 20; ++i) config.slas_ms.push_back(50.0 + 10.0 * i);
  config.requests = 10000;
  for (auto _ : state) benchmark::DoNotOptimize(edgefleet::simulate(paper_zoo(), *network, config));
  state.SetItemsProcessed(state.iterations() * 20 * 7 * 10000);
}
BENCHMARK(simulate_sweep)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
