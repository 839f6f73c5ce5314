#include "edgefleet/kserve.h"

#include <gtest/gtest.h>

#include <cstring>

namespace edgefleet {
namespace {

std::string raw_floats(const std::vector<float>& values) {
  std::string out(values.size() * sizeof(float), '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

TEST(KserveRequest, ParsesJsonTensorsWithNestedData) {
  const std::string body = R"({"id":"r1","parameters":{"sla_ms":250},
    "inputs":[{"name":"input","datatype":"FP32","shape":[1,2,2],"data":[[[1,2],[3,4]]]}],
    "outputs":[{"name":"logits","parameters":{"classification":3}}]})";
  auto request = parse_infer_request(body, std::nullopt);
  ASSERT_TRUE(request.has_value()) << request.status().to_string();
  EXPECT_EQ(request->id, "r1");
  EXPECT_EQ(request->parameters["sla_ms"], 250);
  ASSERT_EQ(request->inputs.size(), 1u);
  EXPECT_EQ(request->inputs[0].floats, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(request->inputs[0].shape, (std::vector<std::int64_t>{1, 2, 2}));
  ASSERT_EQ(request->outputs.size(), 1u);
  EXPECT_EQ(request->outputs[0].classification, 3);
}

TEST(KserveRequest, ConvertsIntegerAndBoolDatatypesToFloats) {
  auto request = parse_infer_request(
      R"({"inputs":[{"name":"a","datatype":"UINT8","shape":[3],"data":[0,128,255]},
                    {"name":"b","datatype":"BOOL","shape":[2],"data":[true,false]}]})",
      std::nullopt);
  ASSERT_TRUE(request.has_value()) << request.status().to_string();
  EXPECT_EQ(request->inputs[0].floats, (std::vector<float>{0, 128, 255}));
  EXPECT_EQ(request->inputs[1].floats, (std::vector<float>{1, 0}));
}

TEST(KserveRequest, ReadsBinaryTensorsAfterTheJsonHeader) {
  const std::string header =
      R"({"inputs":[{"name":"x","datatype":"FP32","shape":[3],"parameters":{"binary_data_size":12}},
                    {"name":"img","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":7}}]})";
  std::string body = header + raw_floats({0.5f, -1.0f, 2.0f});
  const std::uint32_t length = 3;
  body.append(reinterpret_cast<const char*>(&length), 4);
  body += "abc";
  auto request = parse_infer_request(body, header.size());
  ASSERT_TRUE(request.has_value()) << request.status().to_string();
  EXPECT_EQ(request->inputs[0].floats, (std::vector<float>{0.5f, -1.0f, 2.0f}));
  ASSERT_EQ(request->inputs[1].bytes.size(), 1u);
  EXPECT_EQ(request->inputs[1].bytes[0], "abc");
}

TEST(KserveRequest, DecodesBase64Bytes) {
  auto request = parse_infer_request(
      R"({"inputs":[{"name":"img","datatype":"BYTES","shape":[1],"parameters":{"content_type":"base64"},"data":["aGVsbG8="]}]})",
      std::nullopt);
  ASSERT_TRUE(request.has_value()) << request.status().to_string();
  EXPECT_EQ(request->inputs[0].bytes[0], "hello");
}

TEST(KserveRequest, RoundTripsThroughTheEncoderInBothForms) {
  InferRequest request;
  request.id = "abc";
  request.parameters["sla_ms"] = 100.0;
  Tensor t;
  t.name = "input";
  t.shape = {1, 4};
  t.floats = {1.5f, 2.5f, -3.0f, 0.0f};
  request.inputs.push_back(t);
  Tensor image;
  image.name = "image";
  image.datatype = "BYTES";
  image.shape = {2};
  image.bytes = {std::string("\xff\xd8\x00\x01", 4), ""};
  request.inputs.push_back(image);
  for (bool binary : {false, true}) {
    if (!binary) request.inputs[1].parameters["content_type"] = "base64", request.inputs[1].bytes = {"AAEC", ""};
    const EncodedMessage message = encode_infer_request(request, binary);
    EXPECT_EQ(message.has_binary(), binary);
    auto back = parse_infer_request(message.body, message.json_length);
    ASSERT_TRUE(back.has_value()) << back.status().to_string();
    EXPECT_EQ(back->id, "abc");
    EXPECT_EQ(back->inputs[0].floats, t.floats);
    EXPECT_EQ(back->inputs[1].bytes.size(), 2u);
    EXPECT_EQ(back->parameters["sla_ms"], 100.0);
  }
}

TEST(KserveResponse, EncodesChosenOutputsAsBinaryAndParsesThemBack) {
  InferResponse response;
  response.model_name = "task";
  response.model_version = "v1";
  Tensor logits;
  logits.name = "logits";
  logits.shape = {1, 3};
  logits.floats = {0.1f, 0.7f, 0.2f};
  Tensor labels;
  labels.name = "classification";
  labels.datatype = "BYTES";
  labels.shape = {1, 1};
  labels.bytes = {"0.7:1:shirt"};
  response.outputs = {logits, labels};
  const EncodedMessage message = encode_infer_response(response, false, {"logits"});
  ASSERT_TRUE(message.has_binary());
  EXPECT_EQ(message.body.size() - message.json_length, 12u);
  auto back = parse_infer_response(message.body, message.json_length);
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
  EXPECT_EQ(back->model_version, "v1");
  EXPECT_EQ(back->outputs[0].floats, logits.floats);
  EXPECT_EQ(back->outputs[1].bytes[0], "0.7:1:shirt");
}

TEST(KserveRequest, RejectsMalformedMessagesNamingTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "not valid JSON"},
      {"[1,2]", "JSON object"},
      {R"({"inputs":[]})", "non-empty 'inputs'"},
      {R"({"inputs":[{"name":"x","datatype":"FP8","shape":[1],"data":[1]}]})", "datatype 'FP8'"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[1,2,3]}]})", "shape holds 4 elements but the data has 3"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[-1],"data":[1]}]})", "non-negative"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":["a"]}]})", "must be numbers"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1]}]})", "no 'data'"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]})", "runs past the end"},
      {R"({"inputs":[{"name":"x","datatype":"BYTES","shape":[1],"parameters":{"content_type":"base64"},"data":["!!!"]}]})", "base64"},
      {R"({"inputs":[{"datatype":"FP32","shape":[1],"data":[1]}]})", "'name'"},
      {R"({"parameters":{"binary_data_output":"yes"},"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]})", "binary_data_output"},
  };
  for (const auto& [body, expected] : cases) {
    auto request = parse_infer_request(body, std::nullopt);
    ASSERT_FALSE(request.has_value()) << body;
    // A datatype the protocol has but edgefleet does not read (FP8 is neither) is unsupported.
    const bool datatype = expected.rfind("datatype", 0) == 0;
    EXPECT_EQ(request.status().code(), datatype ? StatusCode::kUnsupported : StatusCode::kInvalidArgument) << body;
    EXPECT_NE(request.status().message().find(expected), std::string::npos) << body << " -> " << request.status().message();
  }
}

TEST(KserveRequest, RejectsBinaryBytesNoTensorAccountsFor) {
  const std::string header = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]})";
  const std::string body = header + raw_floats({1.0f, 2.0f});
  auto request = parse_infer_request(body, header.size());
  ASSERT_FALSE(request.has_value());
  EXPECT_NE(request.status().message().find("4 binary bytes"), std::string::npos) << request.status().message();
}

TEST(KserveRequest, AHugeShapeSaturatesInsteadOfWrappingAround) {
  Tensor t;
  t.shape = {std::int64_t{1} << 40, std::int64_t{1} << 40, 16};
  EXPECT_GT(t.element_count(), std::int64_t{1} << 40);
  auto request = parse_infer_request(
      R"({"inputs":[{"name":"x","datatype":"FP32","shape":[4294967296,4294967296],"data":[1]}]})", std::nullopt);
  EXPECT_FALSE(request.has_value());
}

TEST(KserveHeaderLength, AcceptsOnlyACountThatFitsTheBody) {
  EXPECT_FALSE(parse_header_length("", 10).value().has_value());
  EXPECT_EQ(parse_header_length("7", 10).value().value(), 7u);
  EXPECT_FALSE(parse_header_length("11", 10).has_value());
  EXPECT_FALSE(parse_header_length("-1", 10).has_value());
  EXPECT_FALSE(parse_header_length("12abc", 100).has_value());
  EXPECT_FALSE(parse_header_length("99999999999999999999999", 100).has_value());
}

TEST(KserveBase64, RoundTripsEveryPaddingLength) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    EXPECT_EQ(base64_decode_or_throw(base64_encode(s)), s);
  }
  EXPECT_THROW(base64_decode_or_throw("abc"), Error);
}

}  // namespace
}  // namespace edgefleet
