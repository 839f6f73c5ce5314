#include "serve/grpc_frontend.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>

#include "core/elapsed.h"
#include "core/http_service.h"
#include "core/secret.h"
#include "edgefleet/kserve.h"
#include "grpc_predict_v2.grpc.pb.h"
#include "serve/inference_core.h"
#include "serve/server_metrics.h"

namespace edgefleet {
namespace {

using Clock = std::chrono::steady_clock;
using ProtoParameters = google::protobuf::Map<std::string, inference::InferParameter>;

grpc::StatusCode grpc_code_of(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kCorrupt:
    case StatusCode::kUnsupported:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case StatusCode::kUnavailable:
      return grpc::StatusCode::UNAVAILABLE;
    case StatusCode::kDeadlineExceeded:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    default:
      return grpc::StatusCode::INTERNAL;
  }
}

grpc::Status to_grpc(const Status& s) { return {grpc_code_of(s.code()), s.message()}; }

nlohmann::json json_of(const ProtoParameters& parameters) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, p] : parameters) {
    switch (p.parameter_choice_case()) {
      case inference::InferParameter::kBoolParam: out[key] = p.bool_param(); break;
      case inference::InferParameter::kInt64Param: out[key] = p.int64_param(); break;
      case inference::InferParameter::kStringParam: out[key] = p.string_param(); break;
      case inference::InferParameter::kDoubleParam: out[key] = p.double_param(); break;
      case inference::InferParameter::kUint64Param: out[key] = p.uint64_param(); break;
      default: out[key] = nullptr; break;  // unset: read as a wrong type where a value is expected
    }
  }
  return out;
}

// Parameters the JSON protocol can carry but gRPC's cannot (objects, arrays) go as JSON text.
void fill_parameters(const nlohmann::json& parameters, ProtoParameters& out) {
  for (const auto& [key, v] : parameters.items()) {
    inference::InferParameter& p = out[key];
    if (v.is_boolean()) p.set_bool_param(v.get<bool>());
    else if (v.is_number_unsigned()) p.set_uint64_param(v.get<std::uint64_t>());
    else if (v.is_number_integer()) p.set_int64_param(v.get<std::int64_t>());
    else if (v.is_number_float()) p.set_double_param(v.get<double>());
    else if (v.is_string()) p.set_string_param(v.get<std::string>());
    else p.set_string_param(v.dump());
  }
}

// Typed contents, as the datatype says; data in any other field is an error, not ignored.
Status fill_from_contents(const inference::InferTensorContents& c, Tensor& t) {
  const auto take = [&t](const auto& values) { t.floats.assign(values.begin(), values.end()); };
  const std::string& d = t.datatype;
  int fields_with_data = 0;
  for (const int n : {c.bool_contents_size(), c.int_contents_size(), c.int64_contents_size(), c.uint_contents_size(),
                      c.uint64_contents_size(), c.fp32_contents_size(), c.fp64_contents_size(), c.bytes_contents_size()}) {
    fields_with_data += n > 0;
  }
  if (d == "FP32") take(c.fp32_contents());
  else if (d == "FP64") take(c.fp64_contents());
  else if (d == "INT8" || d == "INT16" || d == "INT32") take(c.int_contents());
  else if (d == "INT64") take(c.int64_contents());
  else if (d == "UINT8" || d == "UINT16" || d == "UINT32") take(c.uint_contents());
  else if (d == "UINT64") take(c.uint64_contents());
  else if (d == "BOOL") take(c.bool_contents());
  else if (d == "BYTES") t.bytes.assign(c.bytes_contents().begin(), c.bytes_contents().end());
  const std::size_t taken = d == "BYTES" ? t.bytes.size() : t.floats.size();
  if (fields_with_data > 1 || (fields_with_data == 1 && taken == 0)) {
    return invalid_argument("tensor '" + t.name + "': its contents are not in the field of datatype " + d);
  }
  return Status::ok();
}

Expected<InferRequest> infer_request_of(const inference::ModelInferRequest& m) {
  InferRequest request;
  request.id = m.id();
  request.parameters = json_of(m.parameters());
  if (m.inputs_size() == 0) return invalid_argument("the request needs at least one input");
  const bool raw = m.raw_input_contents_size() > 0;
  if (raw && m.raw_input_contents_size() != m.inputs_size()) {
    return invalid_argument("raw_input_contents has " + std::to_string(m.raw_input_contents_size()) + " entries for " +
                            std::to_string(m.inputs_size()) + " inputs");
  }
  for (int i = 0; i < m.inputs_size(); ++i) {
    const auto& in = m.inputs(i);
    Tensor t;
    t.name = in.name();
    t.datatype = in.datatype();
    t.shape.assign(in.shape().begin(), in.shape().end());
    t.parameters = json_of(in.parameters());
    if (raw && in.has_contents()) return invalid_argument("tensor '" + t.name + "': contents and raw_input_contents both given");
    const Status filled = raw ? read_raw_tensor(m.raw_input_contents(i), t) : fill_from_contents(in.contents(), t);
    if (!filled.is_ok()) return filled;
    const Status checked = check_tensor(t);
    if (!checked.is_ok()) return checked;
    request.inputs.push_back(std::move(t));
  }
  for (const auto& o : m.outputs()) {
    RequestedOutput out;
    out.name = o.name();
    if (auto it = o.parameters().find("classification"); it != o.parameters().end()) {
      if (it->second.parameter_choice_case() != inference::InferParameter::kInt64Param || it->second.int64_param() < 1) {
        return invalid_argument("output '" + out.name + "': classification must be a positive int64_param");
      }
      out.classification = static_cast<int>(std::min<std::int64_t>(it->second.int64_param(), 1 << 20));
    }
    request.outputs.push_back(std::move(out));
  }
  return request;
}

void fill_response(const InferResponse& r, inference::ModelInferResponse& m) {
  m.set_model_name(r.model_name);
  m.set_model_version(r.model_version);
  m.set_id(r.id);
  fill_parameters(r.parameters, *m.mutable_parameters());
  for (const auto& t : r.outputs) {
    auto* out = m.add_outputs();
    out->set_name(t.name);
    out->set_datatype(t.datatype);
    for (const auto d : t.shape) out->add_shape(d);
    fill_parameters(t.parameters, *out->mutable_parameters());
    m.add_raw_output_contents(raw_tensor_bytes(t));
  }
}

void fill_tensor_metadata(const nlohmann::json& tensors,
                          google::protobuf::RepeatedPtrField<inference::ModelMetadataResponse::TensorMetadata>& out) {
  for (const auto& t : tensors) {
    auto* m = out.Add();
    m->set_name(t["name"].get<std::string>());
    m->set_datatype(t["datatype"].get<std::string>());
    for (const auto& d : t["shape"]) m->add_shape(d.get<std::int64_t>());
  }
}

class Service final : public inference::GRPCInferenceService::Service {
 public:
  Service(const GrpcFrontendOptions& options, InferenceCore& core, ServerMetrics& metrics, std::function<bool()> ready)
      : options_(options), core_(core), metrics_(metrics), ready_(std::move(ready)) {}

  grpc::Status ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*, inference::ServerLiveResponse* out) override {
    out->set_live(true);
    return grpc::Status::OK;
  }
  grpc::Status ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*, inference::ServerReadyResponse* out) override {
    out->set_ready(ready_());
    return grpc::Status::OK;
  }
  grpc::Status ModelReady(grpc::ServerContext* context, const inference::ModelReadyRequest* in,
                          inference::ModelReadyResponse* out) override {
    if (!authorized(*context)) return unauthenticated();
    out->set_ready(core_.ready(in->name(), in->version()));
    return grpc::Status::OK;
  }
  grpc::Status ServerMetadata(grpc::ServerContext* context, const inference::ServerMetadataRequest*,
                              inference::ServerMetadataResponse* out) override {
    if (!authorized(*context)) return unauthenticated();
    out->set_name(kServerName);
    out->set_version(kServerVersion);
    out->add_extensions("classification");
    return grpc::Status::OK;
  }
  grpc::Status ModelMetadata(grpc::ServerContext* context, const inference::ModelMetadataRequest* in,
                             inference::ModelMetadataResponse* out) override {
    if (!authorized(*context)) return unauthenticated();
    auto meta = core_.metadata(in->name(), in->version());
    if (!meta) return to_grpc(meta.status());
    const nlohmann::json& j = meta.value();
    out->set_name(j["name"].get<std::string>());
    for (const auto& v : j["versions"]) out->add_versions(v.get<std::string>());
    out->set_platform(j["platform"].get<std::string>());
    fill_tensor_metadata(j["inputs"], *out->mutable_inputs());
    fill_tensor_metadata(j["outputs"], *out->mutable_outputs());
    return grpc::Status::OK;
  }
  grpc::Status ModelInfer(grpc::ServerContext* context, const inference::ModelInferRequest* in,
                          inference::ModelInferResponse* out) override {
    const auto start = Clock::now();
    if (!authorized(*context)) {
      metrics_.request("", "", 401, 0.0, 0.0, false);
      return unauthenticated();
    }
    const std::string label = core_.metric_label(in->model_name());
    const auto refuse = [&](const Status& status) {
      metrics_.request(label, "", http::status_of(status), ms_since(start) / 1000.0, 0.0, false);
      return to_grpc(status);
    };
    auto request = infer_request_of(*in);
    if (!request) return refuse(request.status());
    auto response = core_.infer(std::move(request).value(), {in->model_name(), in->model_version(), 0.0});
    if (!response) return refuse(response.status());
    const Status filled = capture([&] {
                            fill_response(response.value(), *out);
                            return true;
                          }).status();
    if (!filled.is_ok()) return refuse(filled);
    metrics_.answered(label, response.value(), ms_since(start) / 1000.0);
    return grpc::Status::OK;
  }

 private:
  bool authorized(const grpc::ServerContext& context) const {
    if (options_.token.empty()) return true;
    const auto& metadata = context.client_metadata();
    const auto it = metadata.find("authorization");
    if (it == metadata.end()) return false;
    return same_secret(std::string(it->second.data(), it->second.size()), "Bearer " + options_.token);
  }
  static grpc::Status unauthenticated() {
    return {grpc::StatusCode::UNAUTHENTICATED, "missing or wrong bearer token (metadata 'authorization: Bearer TOKEN')"};
  }

  GrpcFrontendOptions options_;
  InferenceCore& core_;
  ServerMetrics& metrics_;
  std::function<bool()> ready_;
};

}  // namespace

struct GrpcFrontend::Impl {
  std::unique_ptr<Service> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::once_flag stopped;
};

Expected<std::unique_ptr<GrpcFrontend>> GrpcFrontend::start(const GrpcFrontendOptions& options, InferenceCore& core,
                                                            ServerMetrics& metrics, std::function<bool()> ready) {
  if (options.port < 0 || options.port > 65535) return invalid_argument("the gRPC port must be in [0, 65535]");
  auto impl = std::make_unique<Impl>();
  impl->service = std::make_unique<Service>(options, core, metrics, std::move(ready));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.host + ":" + std::to_string(options.port), grpc::InsecureServerCredentials(), &impl->port);
  builder.RegisterService(impl->service.get());
  const int max_bytes = static_cast<int>(std::min<std::size_t>(options.max_message_bytes, std::numeric_limits<int>::max()));
  builder.SetMaxReceiveMessageSize(max_bytes);
  builder.SetMaxSendMessageSize(max_bytes);
  grpc::ResourceQuota quota("edgefleet-grpc");
  quota.SetMaxThreads(std::max(options.max_threads, 2));
  builder.SetResourceQuota(quota);
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return io_error("could not listen for gRPC on " + options.host + ":" + std::to_string(options.port) +
                    " (address in use or not available)");
  }
  return std::unique_ptr<GrpcFrontend>(new GrpcFrontend(std::move(impl)));
}

GrpcFrontend::GrpcFrontend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrpcFrontend::~GrpcFrontend() { stop(); }
int GrpcFrontend::port() const { return impl_->port; }

void GrpcFrontend::stop() {
  std::call_once(impl_->stopped, [this] {
    impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(30));
    impl_->server->Wait();
  });
}

}  // namespace edgefleet
