#include "edgefleet/kserve.h"

#include <openssl/evp.h>
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>

namespace edgefleet {
namespace {

struct DatatypeInfo {
  const char* name;
  std::size_t size;  // bytes per element; 0 = BYTES (length-prefixed)
};

constexpr DatatypeInfo kDatatypes[] = {
    {"BOOL", 1},  {"UINT8", 1}, {"UINT16", 2}, {"UINT32", 4}, {"UINT64", 8}, {"INT8", 1},
    {"INT16", 2}, {"INT32", 4}, {"INT64", 8},  {"FP32", 4},   {"FP64", 8},   {"BYTES", 0},
};

const DatatypeInfo& datatype_info(const std::string& name, const std::string& tensor) {
  for (const auto& info : kDatatypes) {
    if (name == info.name) return info;
  }
  throw Error(unsupported("tensor '" + tensor + "': datatype '" + name +
                          "' is not one of BOOL, UINT8/16/32/64, INT8/16/32/64, FP32, FP64, BYTES"));
}

template <typename T>
float read_as_float(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return static_cast<float>(v);
}

float element_from_bytes(const std::string& datatype, const char* p) {
  if (datatype == "BOOL" || datatype == "UINT8") return read_as_float<std::uint8_t>(p);
  if (datatype == "UINT16") return read_as_float<std::uint16_t>(p);
  if (datatype == "UINT32") return read_as_float<std::uint32_t>(p);
  if (datatype == "UINT64") return read_as_float<std::uint64_t>(p);
  if (datatype == "INT8") return read_as_float<std::int8_t>(p);
  if (datatype == "INT16") return read_as_float<std::int16_t>(p);
  if (datatype == "INT32") return read_as_float<std::int32_t>(p);
  if (datatype == "INT64") return read_as_float<std::int64_t>(p);
  if (datatype == "FP64") return read_as_float<double>(p);
  return read_as_float<float>(p);
}

// Request bodies are parsed with simdjson: tensors' data arrays are most of a JSON request,
// and parsing their numbers dominated the server's time with nlohmann's parser. The small
// rest (parameters, outputs) is converted to nlohmann::json for the code that reads it.
// value_unsafe() refers into the temporary result: copy the array or object out before a
// range-for iterates it, or the loop reads a dead object.
simdjson::dom::array array_of(simdjson::dom::element e) { return e.get_array().value_unsafe(); }
simdjson::dom::object object_of(simdjson::dom::element e) { return e.get_object().value_unsafe(); }

nlohmann::json to_nlohmann(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: {
      nlohmann::json out = nlohmann::json::array();
      for (auto child : array_of(e)) out.push_back(to_nlohmann(child));
      return out;
    }
    case simdjson::dom::element_type::OBJECT: {
      nlohmann::json out = nlohmann::json::object();
      for (auto field : object_of(e)) out[std::string(field.key)] = to_nlohmann(field.value);
      return out;
    }
    case simdjson::dom::element_type::INT64: return e.get_int64().value_unsafe();
    case simdjson::dom::element_type::UINT64: return e.get_uint64().value_unsafe();
    case simdjson::dom::element_type::DOUBLE: return e.get_double().value_unsafe();
    case simdjson::dom::element_type::STRING: return std::string(e.get_string().value_unsafe());
    case simdjson::dom::element_type::BOOL: return e.get_bool().value_unsafe();
    case simdjson::dom::element_type::NULL_VALUE: return nullptr;
  }
  return nullptr;
}

const char* dom_type_name(simdjson::dom::element_type type) {
  switch (type) {
    case simdjson::dom::element_type::ARRAY: return "array";
    case simdjson::dom::element_type::OBJECT: return "object";
    case simdjson::dom::element_type::STRING: return "string";
    case simdjson::dom::element_type::BOOL: return "boolean";
    case simdjson::dom::element_type::NULL_VALUE: return "null";
    default: return "number";
  }
}

void flatten_dom(simdjson::dom::element e, Tensor& t) {
  using Type = simdjson::dom::element_type;
  const Type type = e.type();
  if (type == Type::ARRAY) {
    for (auto child : array_of(e)) flatten_dom(child, t);
  } else if (t.datatype == "BYTES") {
    if (type != Type::STRING) throw Error(invalid_argument("tensor '" + t.name + "': BYTES data must be strings"));
    t.bytes.emplace_back(e.get_string().value_unsafe());
  } else if (type == Type::DOUBLE) {
    t.floats.push_back(static_cast<float>(e.get_double().value_unsafe()));
  } else if (type == Type::INT64) {
    t.floats.push_back(static_cast<float>(e.get_int64().value_unsafe()));
  } else if (type == Type::UINT64) {
    t.floats.push_back(static_cast<float>(e.get_uint64().value_unsafe()));
  } else if (type == Type::BOOL) {
    t.floats.push_back(e.get_bool().value_unsafe() ? 1.0f : 0.0f);
  } else {
    throw Error(invalid_argument("tensor '" + t.name + "': " + t.datatype + " data must be numbers, not " + dom_type_name(type)));
  }
}

// Raw bytes of one binary tensor (the extension's layout: numbers little-endian, BYTES
// elements each preceded by a 4-byte little-endian length).
void read_binary(std::string_view raw, Tensor& t) {
  const auto& info = datatype_info(t.datatype, t.name);
  if (info.size == 0) {
    std::size_t at = 0;
    while (at < raw.size()) {
      if (raw.size() - at < 4) throw Error(invalid_argument("tensor '" + t.name + "': truncated BYTES element length"));
      std::uint32_t length;
      std::memcpy(&length, raw.data() + at, 4);
      at += 4;
      if (raw.size() - at < length) throw Error(invalid_argument("tensor '" + t.name + "': BYTES element runs past its data"));
      t.bytes.emplace_back(raw.substr(at, length));
      at += length;
    }
    return;
  }
  if (raw.size() % info.size != 0) {
    throw Error(invalid_argument("tensor '" + t.name + "': binary_data_size " + std::to_string(raw.size()) +
                                 " is not a multiple of the " + std::to_string(info.size) + "-byte " + t.datatype));
  }
  t.floats.reserve(raw.size() / info.size);
  for (std::size_t at = 0; at < raw.size(); at += info.size) t.floats.push_back(element_from_bytes(t.datatype, raw.data() + at));
}

std::string binary_of(const Tensor& t) {
  std::string out;
  if (t.datatype == "BYTES") {
    for (const auto& b : t.bytes) {
      const auto length = static_cast<std::uint32_t>(b.size());
      out.append(reinterpret_cast<const char*>(&length), 4);
      out += b;
    }
    return out;
  }
  if (t.datatype != "FP32") throw Error(internal_error("binary encoding of " + t.datatype + " outputs is not implemented"));
  out.resize(t.floats.size() * sizeof(float));
  if (!t.floats.empty()) std::memcpy(out.data(), t.floats.data(), out.size());
  return out;
}

nlohmann::json data_of(const Tensor& t) {
  if (t.datatype == "BYTES") return t.bytes;
  return t.floats;
}

Tensor tensor_from_json(const nlohmann::json& j, const char* what) {
  if (!j.is_object()) throw Error(invalid_argument(std::string(what) + " must be objects"));
  Tensor t;
  if (!j.contains("name") || !j["name"].is_string()) throw Error(invalid_argument(std::string(what) + ": missing string 'name'"));
  t.name = j["name"].get<std::string>();
  if (!j.contains("datatype") || !j["datatype"].is_string()) {
    throw Error(invalid_argument("tensor '" + t.name + "': missing string 'datatype'"));
  }
  t.datatype = j["datatype"].get<std::string>();
  datatype_info(t.datatype, t.name);
  if (!j.contains("shape") || !j["shape"].is_array()) throw Error(invalid_argument("tensor '" + t.name + "': missing 'shape' array"));
  for (const auto& d : j["shape"]) {
    if (!d.is_number_integer() || d.get<std::int64_t>() < 0) {
      throw Error(invalid_argument("tensor '" + t.name + "': shape entries must be non-negative integers"));
    }
    t.shape.push_back(d.get<std::int64_t>());
  }
  if (j.contains("parameters")) {
    if (!j["parameters"].is_object()) throw Error(invalid_argument("tensor '" + t.name + "': 'parameters' must be an object"));
    t.parameters = j["parameters"];
  }
  return t;
}

std::size_t binary_size_of(const Tensor& t) {
  if (!t.parameters.contains("binary_data_size")) return std::numeric_limits<std::size_t>::max();
  const auto& v = t.parameters["binary_data_size"];
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0) {
    throw Error(invalid_argument("tensor '" + t.name + "': binary_data_size must be a non-negative integer"));
  }
  return v.get<std::size_t>();
}

// Fills tensors from the JSON `data` or from the binary section after the JSON header.
void check_element_count(const Tensor& t) {
  const std::int64_t have = t.datatype == "BYTES" ? static_cast<std::int64_t>(t.bytes.size())
                                                  : static_cast<std::int64_t>(t.floats.size());
  if (have != t.element_count()) {
    throw Error(invalid_argument("tensor '" + t.name + "': shape holds " + std::to_string(t.element_count()) +
                                 " elements but the data has " + std::to_string(have)));
  }
}

void fill_tensors(const nlohmann::json& array, const std::vector<std::optional<simdjson::dom::element>>& data,
                  std::vector<Tensor>& out, std::string_view binary, const char* what) {
  std::size_t at = 0;
  for (std::size_t i = 0; i < array.size(); ++i) {
    Tensor t = tensor_from_json(array[i], what);
    const std::size_t size = binary_size_of(t);
    if (size != std::numeric_limits<std::size_t>::max()) {
      if (binary.size() - at < size) {
        throw Error(invalid_argument("tensor '" + t.name + "': binary_data_size " + std::to_string(size) +
                                     " runs past the end of the body"));
      }
      read_binary(binary.substr(at, size), t);
      at += size;
    } else {
      if (!data[i]) throw Error(invalid_argument("tensor '" + t.name + "': no 'data' and no binary_data_size"));
      flatten_dom(*data[i], t);
      if (t.datatype == "BYTES" && t.parameters.value("content_type", "") == "base64") {
        for (auto& b : t.bytes) b = base64_decode_or_throw(b);
      }
    }
    check_element_count(t);
    out.push_back(std::move(t));
  }
  if (at != binary.size()) {
    throw Error(invalid_argument("the body has " + std::to_string(binary.size() - at) +
                                 " binary bytes that no tensor's binary_data_size accounts for"));
  }
}

// A message body: its JSON header without the tensors' data, which stays in simdjson's DOM
// (valid while the parser lives) and is read straight into the tensors.
struct ParsedBody {
  // A parser holds about ten times the largest document it parsed. Small bodies use one
  // parser per thread (no allocation per request); a larger body gets its own parser, freed
  // with the request, so that a few large requests do not leave every HTTP thread holding
  // hundreds of megabytes.
  std::unique_ptr<simdjson::dom::parser> own_parser;
  nlohmann::json header;
  std::vector<std::optional<simdjson::dom::element>> tensor_data;  // per entry of "inputs" or "outputs"
  std::string_view binary;
};

ParsedBody split_body(std::string_view body, std::optional<std::size_t> header_length, const char* tensors_key) {
  const std::size_t json_length = header_length.value_or(body.size());
  if (json_length > body.size()) {
    throw Error(invalid_argument(std::string(kInferenceHeaderContentLength) + " " + std::to_string(json_length) +
                                 " is larger than the body (" + std::to_string(body.size()) + " bytes)"));
  }
  constexpr std::size_t kSharedParserBytes = 1u << 20;
  thread_local simdjson::dom::parser shared_parser(kSharedParserBytes);
  ParsedBody parsed;
  simdjson::dom::parser* parser = &shared_parser;
  if (json_length > kSharedParserBytes) {
    parsed.own_parser = std::make_unique<simdjson::dom::parser>(json_length);
    parser = parsed.own_parser.get();
  }
  simdjson::dom::element root;
  if (parser->parse(body.data(), json_length).get(root) != simdjson::SUCCESS) {
    throw Error(invalid_argument("the body is not valid JSON"));
  }
  if (root.type() != simdjson::dom::element_type::OBJECT) throw Error(invalid_argument("the body must be a JSON object"));
  parsed.header = nlohmann::json::object();
  parsed.binary = body.substr(json_length);
  for (auto field : object_of(root)) {
    if (field.key != tensors_key || field.value.type() != simdjson::dom::element_type::ARRAY) {
      parsed.header[std::string(field.key)] = to_nlohmann(field.value);
      continue;
    }
    nlohmann::json tensors = nlohmann::json::array();
    parsed.tensor_data.clear();
    for (auto entry : array_of(field.value)) {
      std::optional<simdjson::dom::element> data;
      if (entry.type() != simdjson::dom::element_type::OBJECT) {
        tensors.push_back(to_nlohmann(entry));
      } else {
        nlohmann::json tensor = nlohmann::json::object();
        for (auto member : object_of(entry)) {
          if (member.key == "data") {
            data = member.value;
          } else {
            tensor[std::string(member.key)] = to_nlohmann(member.value);
          }
        }
        tensors.push_back(std::move(tensor));
      }
      parsed.tensor_data.push_back(data);
    }
    parsed.header[std::string(field.key)] = std::move(tensors);
  }
  return parsed;
}

std::string id_of(const nlohmann::json& j) {
  if (!j.contains("id")) return "";
  if (!j["id"].is_string()) throw Error(invalid_argument("'id' must be a string"));
  return j["id"].get<std::string>();
}

nlohmann::json parameters_of(const nlohmann::json& j) {
  if (!j.contains("parameters")) return nlohmann::json::object();
  if (!j["parameters"].is_object()) throw Error(invalid_argument("'parameters' must be an object"));
  return j["parameters"];
}

EncodedMessage encode(nlohmann::json header, const std::vector<Tensor>& tensors, const char* key,
                      const std::function<bool(const Tensor&)>& binary) {
  std::string tail;
  nlohmann::json array = nlohmann::json::array();
  for (const auto& t : tensors) {
    nlohmann::json j{{"name", t.name}, {"datatype", t.datatype}, {"shape", t.shape}};
    nlohmann::json parameters = t.parameters;
    if (binary(t)) {
      const std::string raw = binary_of(t);
      parameters["binary_data_size"] = raw.size();
      tail += raw;
    } else {
      parameters.erase("binary_data_size");
      j["data"] = data_of(t);
    }
    if (!parameters.empty()) j["parameters"] = parameters;
    array.push_back(std::move(j));
  }
  header[key] = std::move(array);
  EncodedMessage out;
  out.body = header.dump();
  out.json_length = out.body.size();
  out.body += tail;
  return out;
}

}  // namespace

std::int64_t Tensor::element_count() const {
  // Saturates instead of overflowing: a hostile shape must not wrap around to a small count.
  constexpr std::int64_t kLimit = std::int64_t{1} << 48;
  std::int64_t n = 1;
  for (auto d : shape) {
    if (d != 0 && n > kLimit / d) return kLimit;
    n *= d;
  }
  return n;
}

Expected<std::optional<std::size_t>> parse_header_length(const std::string& value, std::size_t body_size) {
  if (value.empty()) return std::optional<std::size_t>{};
  if (value.size() > 18 || value.find_first_not_of("0123456789") != std::string::npos) {
    return invalid_argument(std::string(kInferenceHeaderContentLength) + " '" + value + "' is not a byte count");
  }
  const std::size_t n = std::stoull(value);
  if (n > body_size) {
    return invalid_argument(std::string(kInferenceHeaderContentLength) + " " + value + " is larger than the body (" +
                            std::to_string(body_size) + " bytes)");
  }
  return std::optional<std::size_t>{n};
}

Status read_raw_tensor(std::string_view raw, Tensor& t) {
  return capture([&] {
           read_binary(raw, t);
           check_element_count(t);
           return true;
         }).status();
}

std::string raw_tensor_bytes(const Tensor& t) { return binary_of(t); }

Status check_tensor(const Tensor& t) {
  return capture([&] {
    datatype_info(t.datatype, t.name);
    for (const auto d : t.shape) {
      if (d < 0) throw Error(invalid_argument("tensor '" + t.name + "': shape entries must be non-negative integers"));
    }
    check_element_count(t);
    return true;
  }).status();
}

Expected<InferRequest> parse_infer_request(std::string_view body, std::optional<std::size_t> header_length) {
  return capture([&] {
    ParsedBody parsed = split_body(body, header_length, "inputs");
    const nlohmann::json& j = parsed.header;
    InferRequest request;
    request.id = id_of(j);
    request.parameters = parameters_of(j);
    if (request.parameters.contains("binary_data_output")) {
      if (!request.parameters["binary_data_output"].is_boolean()) {
        throw Error(invalid_argument("parameters.binary_data_output must be true or false"));
      }
      request.binary_output = request.parameters["binary_data_output"].get<bool>();
    }
    if (!j.contains("inputs") || !j["inputs"].is_array() || j["inputs"].empty()) {
      throw Error(invalid_argument("the request needs a non-empty 'inputs' array"));
    }
    fill_tensors(j["inputs"], parsed.tensor_data, request.inputs, parsed.binary, "inputs");
    if (j.contains("outputs")) {
      if (!j["outputs"].is_array()) throw Error(invalid_argument("'outputs' must be an array"));
      for (const auto& o : j["outputs"]) {
        if (!o.is_object() || !o.contains("name") || !o["name"].is_string()) {
          throw Error(invalid_argument("each requested output needs a string 'name'"));
        }
        RequestedOutput out;
        out.name = o["name"].get<std::string>();
        const auto p = o.value("parameters", nlohmann::json::object());
        if (!p.is_object()) throw Error(invalid_argument("output '" + out.name + "': 'parameters' must be an object"));
        if (p.contains("binary_data")) {
          if (!p["binary_data"].is_boolean()) throw Error(invalid_argument("output '" + out.name + "': binary_data must be a boolean"));
          out.binary = p["binary_data"].get<bool>();
        }
        if (p.contains("classification")) {
          if (!p["classification"].is_number_integer() || p["classification"].get<int>() < 1) {
            throw Error(invalid_argument("output '" + out.name + "': classification must be a positive integer"));
          }
          out.classification = p["classification"].get<int>();
        }
        request.outputs.push_back(std::move(out));
      }
    }
    return request;
  });
}

EncodedMessage encode_infer_request(const InferRequest& request, bool binary_inputs) {
  nlohmann::json header = nlohmann::json::object();
  if (!request.id.empty()) header["id"] = request.id;
  nlohmann::json parameters = request.parameters;
  if (request.binary_output) parameters["binary_data_output"] = true;
  if (!parameters.empty()) header["parameters"] = parameters;
  if (!request.outputs.empty()) {
    header["outputs"] = nlohmann::json::array();
    for (const auto& o : request.outputs) {
      nlohmann::json p = nlohmann::json::object();
      if (o.binary) p["binary_data"] = true;
      if (o.classification > 0) p["classification"] = o.classification;
      nlohmann::json entry{{"name", o.name}};
      if (!p.empty()) entry["parameters"] = p;
      header["outputs"].push_back(entry);
    }
  }
  return encode(std::move(header), request.inputs, "inputs", [&](const Tensor&) { return binary_inputs; });
}

Expected<InferResponse> parse_infer_response(std::string_view body, std::optional<std::size_t> header_length) {
  return capture([&] {
    ParsedBody parsed = split_body(body, header_length, "outputs");
    const nlohmann::json& j = parsed.header;
    InferResponse response;
    if (j.contains("error")) throw Error(invalid_argument("the server answered an error: " + j["error"].dump()));
    response.model_name = j.value("model_name", "");
    response.model_version = j.value("model_version", "");
    response.id = id_of(j);
    response.parameters = parameters_of(j);
    if (!j.contains("outputs") || !j["outputs"].is_array()) throw Error(invalid_argument("the response has no 'outputs' array"));
    fill_tensors(j["outputs"], parsed.tensor_data, response.outputs, parsed.binary, "outputs");
    return response;
  });
}

EncodedMessage encode_infer_response(const InferResponse& response, bool all_binary, const std::vector<std::string>& binary_outputs) {
  nlohmann::json header{{"model_name", response.model_name}};
  if (!response.model_version.empty()) header["model_version"] = response.model_version;
  if (!response.id.empty()) header["id"] = response.id;
  if (!response.parameters.empty()) header["parameters"] = response.parameters;
  return encode(std::move(header), response.outputs, "outputs", [&](const Tensor& t) {
    return all_binary || std::find(binary_outputs.begin(), binary_outputs.end(), t.name) != binary_outputs.end();
  });
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string base64_decode_or_throw(std::string_view text) {
  if (text.size() % 4 != 0) throw Error(invalid_argument("base64 data length " + std::to_string(text.size()) + " is not a multiple of 4"));
  std::string out(3 * text.size() / 4, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) throw Error(invalid_argument("the BYTES data is not valid base64"));
  // EVP_DecodeBlock counts the padding as decoded zero bytes.
  std::size_t padding = 0;
  for (std::size_t i = text.size(); i > 0 && text[i - 1] == '=' && padding < 2; --i) ++padding;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

}  // namespace edgefleet
