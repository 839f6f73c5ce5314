// edgefleet serve: the KServe v2 inference server over a model repository.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/cli_common.h"
#include "core/secret.h"
#include "edgefleet/inference_server.h"
#include "edgefleet/selection.h"

namespace edgefleet::cli {
namespace {

int g_signal_pipe[2] = {-1, -1};

void forward_signal(int signal) {
  const char byte = static_cast<char>(signal);
  const int saved = errno;
  [[maybe_unused]] const ssize_t written = write(g_signal_pipe[1], &byte, 1);
  errno = saved;
}

struct ServeLimits {
  double max_body_mb = 32.0;
  double max_image_megapixels = 50.0;
  double decode_budget_mb = 1024.0;
};

int run_serve(ServerOptions options, const ServeLimits& limits) {
  // Allocator settings (bounded arenas, freed memory kept for reuse): main, core/allocator.h.
  if (!(limits.max_body_mb > 0 && limits.max_body_mb <= 4096)) return fail(invalid_argument("--max-body-mb must be in (0, 4096]"));
  if (!(limits.max_image_megapixels > 0 && limits.max_image_megapixels <= 1000)) {
    return fail(invalid_argument("--max-image-megapixels must be in (0, 1000]"));
  }
  if (!(limits.decode_budget_mb >= 1 && limits.decode_budget_mb <= 1 << 20)) {
    return fail(invalid_argument("--decode-budget-mb must be in [1, 1048576]"));
  }
  options.max_body_bytes = static_cast<std::size_t>(limits.max_body_mb * (1 << 20));
  options.max_image_pixels = static_cast<std::size_t>(limits.max_image_megapixels * 1e6);
  options.decode_budget_bytes = static_cast<std::size_t>(limits.decode_budget_mb * (1 << 20));
  if (options.token.empty()) options.token = token_from_environment();
  static std::mutex log_mutex;
  options.log = [](const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mutex);
    std::cerr << "edgefleet serve: " << line << std::endl;
  };
  // SIGTERM and SIGINT only write their number into a pipe (async-signal-safe, and any thread
  // may take them: libraries start threads before main); a watcher thread reads it and stops
  // the server, which lets requests in flight finish.
  if (pipe(g_signal_pipe) != 0) return fail(io_error("could not create the signal pipe"));
  struct sigaction action {};
  action.sa_handler = forward_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  auto server = InferenceServer::create(options);
  if (!server) return fail(server.status());
  const Status started = server.value()->start();
  if (!started.is_ok()) return fail(started);
  // Before the HTTP line: scripts wait for "listening on " and then both are up.
  if (server.value()->grpc_port() > 0) {
    std::cout << "listening for gRPC on " << options.host << ":" << server.value()->grpc_port() << std::endl;
  }
  std::cout << "listening on http://" << options.host << ":" << server.value()->port() << std::endl;
  std::thread watcher([&] {
    char signal = 0;
    while (read(g_signal_pipe[0], &signal, 1) < 0 && errno == EINTR) {
    }
    if (signal == 0) return;  // the server stopped on its own
    options.log(std::string("received ") + (signal == SIGTERM ? "SIGTERM" : "SIGINT") + "; finishing requests in flight");
    server.value()->stop();
  });
  server.value()->wait();
  const char stopped = 0;  // releases the watcher when stop() came from elsewhere
  [[maybe_unused]] const ssize_t written = write(g_signal_pipe[1], &stopped, 1);
  watcher.join();
  return 0;
}

}  // namespace

Runner add_serve_command(CLI::App& app) {
  auto options = std::make_shared<ServerOptions>();
  auto limits = std::make_shared<ServeLimits>();
  auto* command = app.add_subcommand("serve", "Serve a model repository over KServe v2 (HTTP), choosing a variant per request");
  command->add_option("--repository", options->repository, "Model repository: TASK/VARIANT/card.json + model")
      ->required()->envname("EDGEFLEET_REPOSITORY");
  command->add_option("--host", options->host, "Address to bind (0.0.0.0 for every interface)")
      ->capture_default_str()->envname("EDGEFLEET_HOST");
  command->add_option("--port", options->port, "Port (0 = any free one, printed at start)")
      ->capture_default_str()->envname("EDGEFLEET_PORT");
  command->add_option("--grpc-port", options->grpc_port, "KServe v2 gRPC port beside HTTP (-1 = off, 0 = any free one, printed at start)")
      ->capture_default_str()->check(CLI::Range(-1, 65535))->envname("EDGEFLEET_GRPC_PORT");
  command->add_option("--token", options->token,
                      "Require 'Authorization: Bearer TOKEN'; prefer $EDGEFLEET_TOKEN, which other users cannot read in ps");
  command->add_option("--policy", options->policy, "Default selection policy")->capture_default_str()->check(CLI::IsMember(policy_names()));
  command->add_option("--default-sla", options->default_sla_ms, "SLA (ms) of requests without sla_ms; 0 = most accurate")
      ->capture_default_str();
  command->add_option("--threads", options->http_threads, "HTTP connections served at once (a thread each, started on demand)")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  command->add_option("--read-timeout", options->read_timeout_seconds, "Seconds of silence allowed while a request arrives")
      ->capture_default_str()->check(CLI::Range(1, 600));
  command->add_option("--instances", options->instances_per_variant, "Model copies per variant (inferences at once)")
      ->capture_default_str()->check(CLI::Range(1, 64));
  command->add_option("--engine-threads", options->engine_threads, "Intra-op threads per model copy")
      ->capture_default_str()->check(CLI::Range(1, 256));
  command->add_option("--max-queue", options->max_queue, "Requests waiting per variant before 503")
      ->capture_default_str()->check(CLI::Range(0, 1000000));
  command->add_option("--max-batch", options->max_batch, "Dynamic batching: items per model run (1 = off)")
      ->capture_default_str()->check(CLI::Range(1, 4096))->envname("EDGEFLEET_MAX_BATCH");
  command->add_option("--max-queue-delay", options->max_queue_delay_ms, "Dynamic batching: ms a request may wait for its batch to fill")
      ->capture_default_str()->check(CLI::Range(0.0, 60000.0))->envname("EDGEFLEET_MAX_QUEUE_DELAY");
  command->add_option("--max-body-mb", limits->max_body_mb, "Largest request body (MiB) before 413")->capture_default_str();
  command->add_option("--max-image-megapixels", limits->max_image_megapixels, "Largest picture accepted, in megapixels")
      ->capture_default_str();
  command->add_option("--decode-budget-mb", limits->decode_budget_mb, "Memory for pictures decoded at once (MiB); more wait")
      ->capture_default_str();
  command->add_option("--warmup", options->warmup_runs, "Warm-up inferences per variant at load")
      ->capture_default_str()->check(CLI::Range(0, 10000));
  command->add_option("--poll", options->poll_seconds, "Rescan the repository every S seconds (0 = only on request)")
      ->capture_default_str();
  command->add_flag("--require-sha256", options->require_sha256, "Refuse variants whose card has no sha256 of the model file");
  command->add_option("--seed", options->seed, "Seed of the selection policies")->capture_default_str();
  return [options, limits] { return run_serve(*options, *limits); };
}

}  // namespace edgefleet::cli
