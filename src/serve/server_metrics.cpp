#include "serve/server_metrics.h"

#include <sstream>

#include "core/http_service.h"

namespace edgefleet {
namespace {

// Label values escaped as the Prometheus text format asks (valid UTF-8 with \\, \" and \n).
std::string label(const std::string& value) {
  std::string out;
  for (char c : http::valid_utf8(value)) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

void ServerMetrics::Histogram::add(double v) {
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (v <= kBuckets[i]) ++counts[i];
  }
  ++count;
  sum += v;
}

void ServerMetrics::answered(const std::string& model, const InferResponse& response, double seconds) {
  const auto& p = response.parameters;
  const double sla_ms = p["sla_ms"].get<double>();
  const bool missed = sla_ms > 0 && p["network_ms"].get<double>() + seconds * 1000.0 > sla_ms;
  request(model, p["variant"].get<std::string>(), 200, seconds, p["queue_ms"].get<double>() / 1000.0, missed);
}

void ServerMetrics::request(const std::string& model, const std::string& variant, int status, double seconds,
                            double queue_seconds, bool sla_missed) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{model, status}];
  if (!variant.empty()) {
    ++selections_[variant];
    duration_.add(seconds);
    queue_.add(queue_seconds);
  }
  if (sla_missed) ++sla_misses_[model];
}

void ServerMetrics::shed(const std::string& variant) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++shed_[variant];
}

std::string ServerMetrics::prometheus_text(const std::vector<VariantProfile>& profiles) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream out;
  auto histogram = [&](const char* name, const char* help, const Histogram& h) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
    for (std::size_t i = 0; i < kBuckets.size(); ++i) out << name << "_bucket{le=\"" << kBuckets[i] << "\"} " << h.counts[i] << "\n";
    out << name << "_bucket{le=\"+Inf\"} " << h.count << "\n" << name << "_sum " << h.sum << "\n" << name << "_count " << h.count << "\n";
  };
  out << "# HELP edgefleet_requests_total Inference and other requests answered, by model addressed and HTTP status.\n"
         "# TYPE edgefleet_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out << "edgefleet_requests_total{model=\"" << label(key.first) << "\",code=\"" << key.second << "\"} " << n << "\n";
  }
  out << "# HELP edgefleet_request_failures_total Requests answered with a 4xx or 5xx status.\n"
         "# TYPE edgefleet_request_failures_total counter\n";
  std::map<int, std::int64_t> failures;
  for (const auto& [key, n] : requests_) {
    if (key.second >= 400) failures[key.second] += n;
  }
  for (const auto& [code, n] : failures) out << "edgefleet_request_failures_total{code=\"" << code << "\"} " << n << "\n";
  out << "# HELP edgefleet_selections_total Successful inferences, by the variant that ran them.\n"
         "# TYPE edgefleet_selections_total counter\n";
  for (const auto& [variant, n] : selections_) out << "edgefleet_selections_total{variant=\"" << label(variant) << "\"} " << n << "\n";
  out << "# HELP edgefleet_sla_misses_total Requests whose network estimate plus server time overran sla_ms.\n"
         "# TYPE edgefleet_sla_misses_total counter\n";
  for (const auto& [model, n] : sla_misses_) out << "edgefleet_sla_misses_total{model=\"" << label(model) << "\"} " << n << "\n";
  out << "# HELP edgefleet_shed_total Requests refused with 503 because a variant's queue was full.\n"
         "# TYPE edgefleet_shed_total counter\n";
  for (const auto& [variant, n] : shed_) out << "edgefleet_shed_total{variant=\"" << label(variant) << "\"} " << n << "\n";
  histogram("edgefleet_request_duration_seconds", "Time in the server of successful inferences.", duration_);
  histogram("edgefleet_queue_duration_seconds", "Time successful inferences waited for a model copy.", queue_);
  out << "# HELP edgefleet_variant_latency_seconds The online latency profile selection uses (execution plus queueing, per image).\n"
         "# TYPE edgefleet_variant_latency_seconds gauge\n";
  for (const auto& p : profiles) {
    out << "edgefleet_variant_latency_seconds{variant=\"" << label(p.name) << "\",stat=\"mean\"} " << p.mean_ms / 1000.0 << "\n";
    out << "edgefleet_variant_latency_seconds{variant=\"" << label(p.name) << "\",stat=\"std\"} " << p.std_ms / 1000.0 << "\n";
  }
  return out.str();
}

}  // namespace edgefleet
