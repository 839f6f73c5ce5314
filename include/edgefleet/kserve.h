// The KServe v2 / Open Inference Protocol messages over HTTP: inference requests and
// responses as JSON, or JSON plus raw tensor bytes (the binary tensor extension: the JSON
// header's length travels in the Inference-Header-Content-Length HTTP header, and each
// binary tensor's byte size in its parameters.binary_data_size). Value types, no I/O.
//
//   auto request = parse_infer_request(body, header_length).value();
//   for (const auto& t : request.inputs) { ... t.floats ... t.bytes ... }
//   EncodedMessage out = encode_infer_response(response, /*binary=*/false);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgefleet/status.h"

namespace edgefleet {

inline constexpr const char* kInferenceHeaderContentLength = "Inference-Header-Content-Length";

// One named tensor. Numeric datatypes (BOOL, UINT8..64, INT8..64, FP32, FP64) arrive
// converted to floats; BYTES elements (strings or encoded images) stay as bytes.
struct Tensor {
  std::string name;
  std::string datatype = "FP32";
  std::vector<std::int64_t> shape;
  std::vector<float> floats;
  std::vector<std::string> bytes;
  nlohmann::json parameters = nlohmann::json::object();

  std::int64_t element_count() const;
};

struct RequestedOutput {
  std::string name;
  bool binary = false;
  int classification = 0;  // > 0: the top-k classes as "score:index[:label]" strings
};

struct InferRequest {
  std::string id;
  nlohmann::json parameters = nlohmann::json::object();
  std::vector<Tensor> inputs;
  std::vector<RequestedOutput> outputs;  // empty = every output, as JSON
  bool binary_output = false;            // parameters.binary_data_output
};

struct InferResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  nlohmann::json parameters = nlohmann::json::object();
  std::vector<Tensor> outputs;
};

// A message as it goes on the wire: `body`, of which the first `json_length` bytes are JSON
// (json_length == body.size() when nothing is binary).
struct EncodedMessage {
  std::string body;
  std::size_t json_length = 0;
  bool has_binary() const { return json_length != body.size(); }
};

// Parses a request body. `header_length` is the Inference-Header-Content-Length value when the
// HTTP request carried one. Fails with invalid_argument naming the bad field: malformed JSON,
// unknown datatype, a shape that does not match the data, binary sizes that do not add up.
Expected<InferRequest> parse_infer_request(std::string_view body, std::optional<std::size_t> header_length);
// Encodes a request; inputs with binary == true in their parameters go as raw bytes.
EncodedMessage encode_infer_request(const InferRequest& request, bool binary_inputs);

Expected<InferResponse> parse_infer_response(std::string_view body, std::optional<std::size_t> header_length);
// Outputs named in `binary_outputs` (or every one when `all_binary`) go as raw bytes.
EncodedMessage encode_infer_response(const InferResponse& response, bool all_binary,
                                     const std::vector<std::string>& binary_outputs = {});

// Reads an Inference-Header-Content-Length value; fails on anything but a decimal count that
// fits in `body_size`.
Expected<std::optional<std::size_t>> parse_header_length(const std::string& value, std::size_t body_size);

// Raw tensor data as the binary extension and gRPC's raw_*_contents carry it: elements
// row-major and little-endian, BYTES elements each preceded by a 4-byte little-endian length.
// read_raw_tensor fills t.floats or t.bytes per t.datatype and checks the count against t.shape.
Status read_raw_tensor(std::string_view raw, Tensor& t);
std::string raw_tensor_bytes(const Tensor& t);  // FP32 or BYTES tensors
// A tensor a frontend built: a known datatype, non-negative dimensions, as many elements as
// its shape holds (invalid_argument or unsupported, naming the tensor).
Status check_tensor(const Tensor& t);

std::string base64_decode_or_throw(std::string_view text);  // throws Error(invalid_argument)
std::string base64_encode(std::string_view bytes);

}  // namespace edgefleet
