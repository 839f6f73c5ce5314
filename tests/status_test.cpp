#include "edgefleet/status.h"

#include <gtest/gtest.h>

namespace edgefleet {

TEST(Status, DefaultIsOk) {
  EXPECT_TRUE(Status().is_ok());
  EXPECT_EQ(Status().to_string(), "ok");
}

TEST(Status, ToStringNamesCodeAndMessage) {
  EXPECT_EQ(not_found("no such file 'x'").to_string(), "not_found: no such file 'x'");
}

TEST(Expected, ValueOnErrorThrowsTheStatus) {
  Expected<int> failed = corrupt("bad magic");
  EXPECT_FALSE(failed.has_value());
  EXPECT_EQ(failed.status().code(), StatusCode::kCorrupt);
  try {
    (void)failed.value();
    FAIL() << "value() on an error must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.status().message(), "bad magic");
  }
}

TEST(Expected, BuiltFromOkStatusIsAnInternalError) {
  Expected<int> odd = Status::ok();
  EXPECT_FALSE(odd.has_value());
  EXPECT_EQ(odd.status().code(), StatusCode::kInternal);
}

TEST(Capture, TurnsThrownErrorIntoStatus) {
  auto result = capture([]() -> int { throw Error(invalid_argument("bad flag")); });
  EXPECT_EQ(result.status().to_string(), "invalid_argument: bad flag");
}

TEST(Capture, KeepsOnlyTheReasonLineOfEngineMessages) {
  auto result = capture([]() -> int {
    throw std::runtime_error("Traceback of TorchScript:\n  def forward(x):\nRuntimeError: shapes do not match\n  more\n");
  });
  EXPECT_EQ(result.status().message(), "RuntimeError: shapes do not match");
}

}  // namespace edgefleet
