// edgefleet infer: classify images through the inference server with an SLA, racing an
// on-device model; or replay a labelled dataset that way and report accuracy and reliance.
#include <algorithm>
#include <atomic>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "edgefleet/dataset.h"
#include "edgefleet/encode.h"
#include "edgefleet/image.h"
#include "edgefleet/inference_client.h"
#include "edgefleet/selection.h"

namespace edgefleet::cli {
namespace {

struct InferArgs {
  ClientOptions client;
  std::string network_sample = "round-trip";
  double sla_ms = 250.0;
  std::vector<std::string> images;
  std::string data;
  int requests = 0;  // 0 = one pass over the data
  int concurrency = 1;
  std::string out;
};

Expected<std::vector<std::uint8_t>> encoded_item(const Dataset& data, std::size_t i) {
  auto bytes = data.load_encoded(i);
  if (bytes || bytes.status().code() != StatusCode::kUnsupported) return bytes;
  auto image = data.load(i);  // stored as pixels (Fashion-MNIST): sent as lossless PNG
  if (!image) return image.status();
  EncodeOptions png;
  png.format = ImageFormat::kPng;
  return encode_image(image.value(), png);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(std::min<double>(v.size() - 1, p * (v.size() - 1) + 0.5))];
}

int run_images(InferenceClient& client, const InferArgs& args) {
  int failures = 0;
  std::vector<std::vector<std::string>> rows;
  for (const auto& path : args.images) {
    auto bytes = read_file_bytes(path);
    auto answer = bytes ? client.classify(bytes.value(), args.sla_ms) : Expected<RaceAnswer>(bytes.status());
    if (!answer) {
      std::cerr << "edgefleet: " << path << ": " << answer.status().to_string() << "\n";
      ++failures;
      continue;
    }
    rows.push_back({path, std::to_string(answer->top1), answer->source, answer->model, fixed(answer->latency_ms, 1),
                    answer->met_sla ? "yes" : "no", answer->remote_error});
  }
  std::cout << format_table({"image", "class", "answer from", "model", "latency ms", "within SLA", "remote problem"}, rows);
  return failures ? kExitFailure : 0;
}

int run_replay(InferenceClient& client, const InferArgs& args) {
  auto data = open_dataset(args.data);
  if (!data) return fail(data.status());
  const auto& dataset = *data.value();
  const int n = args.requests > 0 ? args.requests : static_cast<int>(dataset.size());
  if (args.concurrency < 1) return fail(invalid_argument("--concurrency must be >= 1"));
  std::mutex mutex;
  std::atomic<int> next{0};
  int correct = 0, answered = 0, local = 0, local_runs = 0, within = 0;
  std::vector<std::string> errors;
  std::vector<double> latencies;
  std::map<std::string, int> models;
  auto worker = [&] {
    for (int r; (r = next++) < n;) {
      const std::size_t i = static_cast<std::size_t>(r) % dataset.size();
      auto bytes = encoded_item(dataset, i);
      auto answer = bytes ? client.classify(bytes.value(), args.sla_ms) : Expected<RaceAnswer>(bytes.status());
      std::lock_guard<std::mutex> lock(mutex);
      if (!answer) {
        errors.push_back(dataset.item_name(i) + ": " + answer.status().message());
        continue;
      }
      ++answered;
      correct += answer->top1 == dataset.label(i);
      local += answer->source == "local";
      local_runs += answer->local_ran;
      within += answer->met_sla;
      latencies.push_back(answer->latency_ms);
      ++models[answer->source + ":" + answer->model];
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < args.concurrency; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();

  const double d = std::max(answered, 1);
  nlohmann::json summary{{"data", args.data},
                         {"model", args.client.model},
                         {"local_model", args.client.local_model},
                         {"policy", args.client.policy.empty() ? "server default" : args.client.policy},
                         {"network", args.client.network},
                         {"network_sample", args.network_sample},
                         {"sla_ms", args.sla_ms},
                         {"requests", n},
                         {"answered", answered},
                         {"failed", static_cast<int>(errors.size())},
                         {"aggregate_accuracy", correct / d},
                         {"duplicate_above", args.client.duplicate_above},
                         {"on_device_reliance", local / d},
                         {"local_runs", local_runs / d},
                         {"sla_attainment", within / d},
                         {"p50_latency_ms", percentile(latencies, 0.5)},
                         {"p99_latency_ms", percentile(latencies, 0.99)},
                         {"answers_by_model", models}};
  std::vector<std::vector<std::string>> rows;
  for (const auto& [model, count] : models) rows.push_back({model, std::to_string(count), fixed(100.0 * count / d, 1)});
  std::cout << format_table({"answer from", "requests", "%"}, rows);
  std::cout << "aggregate accuracy " << fixed(100 * correct / d, 2) << "%, on-device reliance " << fixed(100 * local / d, 2)
            << "%, local model ran on " << fixed(100 * local_runs / d, 2) << "%, within SLA " << fixed(100 * within / d, 2) << "%, p50 " << fixed(percentile(latencies, 0.5), 1) << " ms, p99 "
            << fixed(percentile(latencies, 0.99), 1) << " ms over " << answered << " answers\n";
  for (std::size_t e = 0; e < std::min<std::size_t>(errors.size(), 5); ++e) std::cerr << "edgefleet: " << errors[e] << "\n";
  if (!args.out.empty()) {
    std::ofstream out(args.out);
    out << summary.dump(2) << "\n";
    if (!out) return fail(io_error("could not write '" + args.out + "'"));
  }
  return errors.empty() ? 0 : kExitFailure;
}

}  // namespace

Runner add_infer_command(CLI::App& app) {
  auto args = std::make_shared<InferArgs>();
  auto* command = app.add_subcommand("infer", "Classify images through the server, racing an on-device model against the deadline");
  command->add_option("--url", args->client.url, "Server, http://HOST:PORT")->capture_default_str();
  command->add_option("--model", args->client.model, "Task (the server picks the variant) or variant name")->required();
  command->add_option("--sla", args->sla_ms, "End-to-end deadline in ms")->capture_default_str();
  command->add_option("--local", args->client.local_model, "On-device model raced against the server (card, file or zoo name)");
  command->add_option("--network", args->client.network,
                      "Emulated network round trip: normal:MEAN:STD, cv:MEAN:CV, trace:FILE or device:NAME");
  command->add_option("--network-sample", args->network_sample,
                      "What a --network time is: round-trip, or input (T_input; round trip = 2 x T_input, the paper's reading)")
      ->capture_default_str()->check(CLI::IsMember(network_sample_names()));
  command->add_option("--duplicate-above", args->client.duplicate_above,
                      "Run --local only when a remote miss is likelier than this (0 = on every request, the paper)")
      ->capture_default_str()->check(CLI::Range(0.0, 0.999999));
  command->add_option("--policy", args->client.policy, "Ask the server for this selection policy")->check(CLI::IsMember(policy_names()));
  command->add_option("--token", args->client.token, "Bearer token");
  command->add_option("--seed", args->client.seed, "Seed of the emulated network")->capture_default_str();
  command->add_option("--data", args->data, "Replay a labelled dataset (fashion-mnist or an image folder) instead of files");
  command->add_option("--requests", args->requests, "Requests to replay (cycling over the data; 0 = one pass)");
  command->add_option("--concurrency", args->concurrency, "Replay clients at once")->capture_default_str();
  command->add_option("--out", args->out, "Write the replay summary as JSON");
  command->add_option("images", args->images, "Image files to classify");
  return [args] {
    if (args->images.empty() == args->data.empty()) return fail(invalid_argument("give image files or --data, not both and not neither"));
    if (!(args->sla_ms > 0)) return fail(invalid_argument("--sla must be a positive number of ms"));
    if (args->network_sample == network_sample_name(NetworkSample::kInput)) args->client.network_sample = NetworkSample::kInput;
    auto client = InferenceClient::create(args->client);
    if (!client) return fail(client.status());
    return args->data.empty() ? run_images(*client.value(), *args) : run_replay(*client.value(), *args);
  };
}

}  // namespace edgefleet::cli
