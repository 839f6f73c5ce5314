// AdaptiveRuntime: a multi-branch model behind a latency monitor, with models re-adapted
// by a port server swapped in while inference goes on.
#include "edgefleet/adaptive_runtime.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/elapsed.h"
#include "core/median.h"
#include "edgefleet/multi_branch.h"

namespace edgefleet {
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kRetrySeconds = 10.0;


// A model the port server adapted, swapped in instead of the branches.
struct Replacement {
  torch::jit::Module module;
  std::string name;
  std::int64_t macs = 0;
  double expected_ms = 0.0;  // its latency without the slowdown seen when it was asked for
};

}  // namespace

struct AdaptiveRuntime::Impl {
  MonitorOptions options;
  std::unique_ptr<MultiBranchModel> branches;
  std::vector<double> branch_ms;
  std::shared_ptr<Replacement> replacement;  // std::atomic_load / atomic_store only
  Clock::time_point started = Clock::now();

  mutable std::mutex mutex;  // latencies, events
  std::vector<double> latencies;
  std::size_t next_latency = 0;
  std::size_t since_action = 0;
  std::vector<MonitorEvent> events;

  std::atomic<bool> stop{false};
  std::atomic<bool> adapting{false};
  std::atomic<double> failed_at{-1e9};  // when the last re-adaptation failed: retried 10 s later
  std::atomic<double> compute_share{1.0};
  bool violating = false;  // monitor thread only
  std::thread monitor;
  std::thread request;
  int requests_made = 0;

  double now_s() const { return std::chrono::duration<double>(Clock::now() - started).count(); }

  void record(double ms) {
    std::lock_guard<std::mutex> lock(mutex);
    if (latencies.size() < options.window) {
      latencies.push_back(ms);
    } else {
      latencies[next_latency] = ms;
      next_latency = (next_latency + 1) % options.window;
    }
    ++since_action;
  }

  double median() const {
    std::lock_guard<std::mutex> lock(mutex);
    return median_of(latencies);
  }

  void event(const std::string& what, const std::string& detail, double median_ms) {
    std::lock_guard<std::mutex> lock(mutex);
    events.push_back({now_s(), what, detail, median_ms});
  }

  void reset_window() {
    std::lock_guard<std::mutex> lock(mutex);
    latencies.clear();
    next_latency = 0;
    since_action = 0;
  }

  // A smaller compute budget, emulated: the rest of the stretched duration busy-waits.
  void stretch(Clock::time_point started) const {
    const double share = compute_share.load();
    if (share >= 1.0) return;
    const double until = ms_since(started) / share;
    while (ms_since(started) < until) {
    }
  }

  std::string active_name() const {
    if (auto r = std::atomic_load(&replacement)) return r->name;
    return "branch " + std::to_string(branches->active());
  }

  torch::Tensor run_replacement(Replacement& r, const torch::Tensor& x) {
    torch::InferenceMode guard;
    return r.module.forward({x}).toTensor().contiguous();
  }

  void check() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (since_action < options.window || latencies.size() < options.window) return;
    }
    const double m = median();
    if (m <= options.target_ms) {
      if (violating) event("recovered", "recent median under the target again on " + active_name(), m);
      violating = false;
      return;
    }
    if (!violating) event("violation", "recent median above the " + std::to_string(options.target_ms) + " ms target on " + active_name(), m);
    violating = true;
    auto current = std::atomic_load(&replacement);
    const int active = branches->active();
    const double expected = current ? current->expected_ms : branch_ms[static_cast<std::size_t>(active)];
    const std::int64_t current_macs = current ? current->macs : branches->branches()[static_cast<std::size_t>(active)].macs;
    const double slowdown = std::max(1.0, m / expected);
    // Foreground: the widest branch that fits the slowdown, at once.
    int choice = 0;
    for (int b = 0; b < branches->branch_count(); ++b) {
      if (branch_ms[static_cast<std::size_t>(b)] * slowdown <= options.headroom * options.target_ms &&
          branches->branches()[static_cast<std::size_t>(b)].macs >= branches->branches()[static_cast<std::size_t>(choice)].macs) {
        choice = b;
      }
    }
    if (current || choice != active) {
      branches->switch_to(choice);
      std::atomic_store(&replacement, std::shared_ptr<Replacement>());
      event("switched", "branch " + std::to_string(choice) + " (slowdown x" + std::to_string(slowdown) + ")", m);
    }
    // Background: a model adapted to the budget that fits, from the port server.
    if (!options.port_url.empty() && now_s() - failed_at.load() > kRetrySeconds && !adapting.exchange(true)) {
      const auto budget = std::max<std::int64_t>(1, static_cast<std::int64_t>(static_cast<double>(current_macs) * options.headroom * options.target_ms / m));
      const std::string name = "runtime-" + std::to_string(++requests_made) + "-" + std::to_string(budget);
      if (request.joinable()) request.join();
      request = std::thread([this, name, budget, slowdown, choice] { readapt(name, budget, slowdown, choice); });
    }
    reset_window();
  }

  void readapt(const std::string& name, std::int64_t budget, double slowdown, int branch) {
    try {
      event("requested", name + ": max_macs " + std::to_string(budget) + " from " + options.port_url, median());
      httplib::Client http(options.port_url.substr(options.port_url.rfind("http://", 0) == 0 ? 7 : 0));
      http.set_read_timeout(900, 0);
      auto res = http.Post("/v1/goals", json{{"name", name}, {"max_macs", budget}}.dump(), "application/json");
      if (!res || res->status != 200) throw Error(io_error("port server: " + (res ? std::to_string(res->status) + " " + res->body : httplib::to_string(res.error()))));
      const json goal = json::parse(res->body).at("goals").at(0);
      auto file = http.Get(("/v1/models/" + name).c_str());
      if (!file || file->status != 200) throw Error(io_error("port server did not send the model of " + name));
      auto next = std::make_shared<Replacement>();
      std::istringstream in(file->body);
      next->module = torch::jit::load(in);
      next->module.eval();
      next->name = name + " (from " + (goal.value("parent", std::string()).empty() ? std::string("the base") : goal.value("parent", std::string())) + ")";
      next->macs = goal.at("macs").get<std::int64_t>();
      const double accuracy = goal.at("accuracy").get<double>();
      const double branch_accuracy = branches->branches()[static_cast<std::size_t>(branch)].accuracy;
      // Warm up, then price it: its latency now over the slowdown seen when it was asked for.
      const auto x = torch::rand({1, branches->channels(), branches->input_size(), branches->input_size()});
      std::vector<double> times;
      for (int i = 0; i < 10; ++i) {
        const auto t = Clock::now();
        run_replacement(*next, x);
        stretch(t);
        times.push_back(ms_since(t));
      }
      next->expected_ms = median_of(times) / slowdown;
      if (accuracy + 1e-9 < branch_accuracy) {
        event("kept", name + ": top-1 " + std::to_string(accuracy) + " below the branch's " + std::to_string(branch_accuracy), median());
      } else {
        std::atomic_store(&replacement, next);
        reset_window();
        event("swapped", next->name + ", " + std::to_string(next->macs) + " MACs, top-1 " + std::to_string(accuracy) + " (branch: " +
                             std::to_string(branch_accuracy) + ")", median());
      }
    } catch (const std::exception& e) {
      failed_at = now_s();
      event("failed", name + ": " + first_meaningful_line(e.what()), median());
    }
    adapting = false;
  }
};

AdaptiveRuntime::AdaptiveRuntime(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdaptiveRuntime::~AdaptiveRuntime() {
  impl_->stop = true;
  if (impl_->monitor.joinable()) impl_->monitor.join();
  if (impl_->request.joinable()) impl_->request.join();
}

Expected<std::unique_ptr<AdaptiveRuntime>> AdaptiveRuntime::start(const std::string& multi_branch_file, const MonitorOptions& options) {
  if (options.window < 3) return invalid_argument("the monitor's window must hold at least 3 inferences");
  if (!(options.headroom > 0 && options.headroom <= 1)) return invalid_argument("headroom must be in (0, 1]");
  if (!options.port_url.empty() && options.port_url.rfind("http://", 0) != 0) return invalid_argument("the port server URL must start with http://");
  auto model = MultiBranchModel::load(multi_branch_file);
  if (!model) return model.status();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->branches = std::move(model).value();
  const std::size_t per_image = static_cast<std::size_t>(impl->branches->channels()) * impl->branches->input_size() * impl->branches->input_size();
  std::vector<float> probe(per_image, 0.5f);
  for (int b = 0; b < impl->branches->branch_count(); ++b) {
    impl->branches->switch_to(b);
    std::vector<double> times;
    for (int i = 0; i < std::max(3, options.calibration_runs); ++i) {
      const auto t = Clock::now();
      auto out = impl->branches->infer(probe.data(), 1);
      if (!out) return out.status();
      times.push_back(ms_since(t));
    }
    impl->branch_ms.push_back(median_of(times));
  }
  // Start on the widest branch: the most accurate, and within the target unloaded.
  int widest = 0;
  for (int b = 0; b < impl->branches->branch_count(); ++b) {
    if (impl->branches->branches()[static_cast<std::size_t>(b)].macs > impl->branches->branches()[static_cast<std::size_t>(widest)].macs) widest = b;
  }
  impl->branches->switch_to(widest);
  if (impl->options.target_ms <= 0) impl->options.target_ms = 1.5 * impl->branch_ms[static_cast<std::size_t>(widest)];
  Impl* raw = impl.get();
  impl->monitor = std::thread([raw] {
    while (!raw->stop) {
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(raw->options.check_every_ms));
      raw->check();
    }
  });
  return std::unique_ptr<AdaptiveRuntime>(new AdaptiveRuntime(std::move(impl)));
}

int AdaptiveRuntime::channels() const { return impl_->branches->channels(); }
int AdaptiveRuntime::input_size() const { return impl_->branches->input_size(); }
double AdaptiveRuntime::target_ms() const { return impl_->options.target_ms; }

Expected<std::vector<float>> AdaptiveRuntime::infer(const float* batch, int n) {
  const auto started = Clock::now();
  Expected<std::vector<float>> out = std::vector<float>();
  if (auto r = std::atomic_load(&impl_->replacement)) {
    try {
      const auto x = torch::from_blob(const_cast<float*>(batch), {n, channels(), input_size(), input_size()});
      const auto logits = impl_->run_replacement(*r, x);
      out = std::vector<float>(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel());
    } catch (const std::exception& e) {
      out = internal_error(std::string("inference failed: ") + first_meaningful_line(e.what()));
    }
  } else {
    out = impl_->branches->infer(batch, n);
  }
  impl_->stretch(started);
  impl_->record(ms_since(started));
  return out;
}

std::string AdaptiveRuntime::active_model() const { return impl_->active_name(); }

Status AdaptiveRuntime::set_compute_share(double share) {
  if (!(share > 0 && share <= 1)) return invalid_argument("the compute share must be in (0, 1]");
  impl_->compute_share = share;
  return Status::ok();
}

double AdaptiveRuntime::recent_median_ms() const { return impl_->median(); }
std::vector<double> AdaptiveRuntime::branch_latency_ms() const { return impl_->branch_ms; }
bool AdaptiveRuntime::adapting() const { return impl_->adapting; }

std::vector<MonitorEvent> AdaptiveRuntime::events() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->events;
}

Expected<BudgetDropResult> run_budget_drop(const BudgetDropOptions& options, const std::vector<float>& images) {
  if (!(options.seconds > options.drop_at) || options.drop_at < 0) return invalid_argument("the drop must come before the end of the run");
  if (!(options.compute_share > 0 && options.compute_share <= 1)) return invalid_argument("compute_share must be in (0, 1]");
  torch::set_num_threads(1);
  auto runtime = AdaptiveRuntime::start(options.multi_branch_file, options.monitor);
  if (!runtime) return runtime.status();
  AdaptiveRuntime& rt = **runtime;
  const std::size_t per_image = static_cast<std::size_t>(rt.channels()) * rt.input_size() * rt.input_size();
  if (images.empty() || images.size() % per_image != 0) return invalid_argument("images must be whole images of the model's input");
  BudgetDropResult result;
  result.target_ms = rt.target_ms();
  result.branch_ms = rt.branch_latency_ms();
  std::atomic<bool> stop{false};
  bool dropped = false;
  std::atomic<std::int64_t> requests{0}, failed{0};
  std::thread client([&] {
    torch::set_num_threads(1);  // OpenMP's thread count is per thread: a new one starts at the core count
    for (std::size_t i = 0; !stop; i = (i + 1) % (images.size() / per_image)) {
      auto out = rt.infer(images.data() + i * per_image, 1);
      ++requests;
      if (!out) ++failed;
    }
  });
  const auto start = Clock::now();
  double elapsed = 0;
  while ((elapsed = ms_since(start) / 1000) < options.seconds) {
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(options.sample_every_ms));
    elapsed = ms_since(start) / 1000;
    const double m = rt.recent_median_ms();
    result.timeline.push_back({elapsed, m, rt.active_model()});
    if (!dropped && elapsed >= options.drop_at) {
      result.before_drop_ms = m;
      dropped = true;
      (void)rt.set_compute_share(options.compute_share);  // validated above
    } else if (dropped) {
      result.worst_ms = std::max(result.worst_ms, m);
    }
  }
  result.final_ms = rt.recent_median_ms();
  result.final_model = rt.active_model();
  stop = true;
  client.join();
  result.requests = requests;
  result.failed = failed;
  result.events = rt.events();
  return result;
}

}  // namespace edgefleet
