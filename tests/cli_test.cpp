// Runs the real edgefleet binary and checks exit codes and messages.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace edgefleet {
namespace {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs the binary; with `stdout_only` stderr is dropped, else merged into the output.
RunResult run_cli(const std::string& args, bool stdout_only = false) {
  const std::string command = std::string(EDGEFLEET_CLI_PATH) + " " + args + (stdout_only ? " 2>/dev/null" : " 2>&1");
  RunResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace

TEST(Cli, UnknownFlagPrintsUsageAndFails) {
  auto r = run_cli("eval --model x --no-such-flag");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--no-such-flag"), std::string::npos);
}

TEST(Cli, NoSubcommandFails) { EXPECT_NE(run_cli("").exit_code, 0); }

TEST(Cli, EverySubcommandHasHelp) {
  for (const char* command : {"zoo", "eval", "fleet", "simulate", "profile", "pipeline", "stability"}) {
    auto r = run_cli(std::string(command) + " --help");
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << command;
  }
}

TEST(Cli, UnknownModelIsOneLineError) {
  auto r = run_cli("eval --model no-such-model");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output.rfind("edgefleet: not_found: model 'no-such-model'", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1);
}

TEST(Cli, MissingDataFolderIsOneLineError) {
  testing::TempDir dir;
  const ModelCard card = testing::write_tiny_model(dir.path());
  auto r = run_cli("eval --model " + card.card_path + " --data " + dir.file("missing"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("no such folder"), std::string::npos);
}

TEST(Cli, EvalJsonHasTheDocumentedFields) {
  testing::TempDir dir;
  const ModelCard card = testing::write_tiny_model(dir.path());
  testing::write_png(dir.file("data/a/1.png"), 28, 28, 1);
  testing::write_png(dir.file("data/b/2.png"), 30, 20, 3);
  testing::write_text(dir.file("data/b/3.png"), "garbage");
  auto r = run_cli("eval --model " + card.card_path + " --data " + dir.file("data") + " --json", true);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["images"], 2);
  EXPECT_GE(j["top1"].get<double>(), 0.0);
  EXPECT_LE(j["top5"].get<double>(), 1.0);
  EXPECT_GT(j["images_per_second"].get<double>(), 0.0);
  EXPECT_EQ(j["skipped"].size(), 1u);
}

TEST(Cli, InvalidDeviceProfileFailsValidation) {
  testing::TempDir dir;
  testing::write_text(dir.file("bad.json"), R"({"name": "Bad Name"})");
  auto r = run_cli("fleet validate " + dir.file("bad.json"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("field 'name' is 'Bad Name'"), std::string::npos);
}

TEST(Cli, FleetListShowsTheBuiltInDevices) {
  auto r = run_cli("fleet list");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("iphone-xr"), std::string::npos);
  EXPECT_NE(r.output.find("stm32h7-mcu"), std::string::npos);
}

TEST(Cli, SimulateWritesResultsJson) {
  testing::TempDir dir;
  auto r = run_cli("simulate --zoo paper-table3 --network normal:100:50 --sla 100:200:50 --requests 200 --out " + dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(dir.file("results.json"));
  const auto rows = nlohmann::json::parse(in);
  EXPECT_EQ(rows.size(), 3u * 7u);
  EXPECT_TRUE(rows[0].contains("on_device_reliance"));
}

TEST(Cli, SimulateRejectsABadSlaRange) {
  auto r = run_cli("simulate --sla 300:100:10");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("TO is smaller than FROM"), std::string::npos);
}

TEST(Cli, ZooListNamesEveryModel) {
  auto r = run_cli("zoo list");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* name : {"cnn_tiny", "mobilenetv2_w050", "resnet_s"}) EXPECT_NE(r.output.find(name), std::string::npos);
}

TEST(Cli, PipelineParseErrorNamesTheTokenAndExitsOne) {
  auto r = run_cli("pipeline show 'decode:turbojpeg|resize:opencv,fast,256'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("edgefleet: invalid_argument: pipeline stage 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("method 'fast'"), std::string::npos) << r.output;
}

TEST(Cli, PipelineRunWritesThePicture) {
  testing::TempDir dir;
  testing::write_png(dir.file("in.png"), 40, 30, 3);
  auto r = run_cli("pipeline run 'encode:jpeg,quality=50|decode:turbojpeg|resize:opencv,area,20x10' --image " +
                   dir.file("in.png") + " --out " + dir.file("out.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("20x10x3"), std::string::npos) << r.output;
  EXPECT_TRUE(std::ifstream(dir.file("out.png")).good());
}

TEST(Cli, StabilityRunWritesSummaryAndResumes) {
  testing::TempDir dir;
  for (int i = 0; i < 4; ++i) testing::write_png(dir.file("data/a/" + std::to_string(i) + ".png"), 28, 28, 1, i);
  for (int i = 0; i < 4; ++i) testing::write_png(dir.file("data/b/" + std::to_string(i) + ".png"), 28, 28, 1, 10 + i);
  const ModelCard card = testing::write_tiny_model(dir.path());
  const std::string command = "stability run --model " + card.card_path + " --data " + dir.file("data") + " --out " +
                              dir.file("run") + " --env 'png=decode:libpng' --env 'jpeg=encode:jpeg,quality=30|decode:opencv'";
  auto first = run_cli(command);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("16 answers computed"), std::string::npos) << first.output;
  std::ifstream in(dir.file("run/summary.json"));
  ASSERT_TRUE(in.good());
  const auto summary = nlohmann::json::parse(in);
  EXPECT_EQ(summary["images"], 8);
  ASSERT_EQ(summary["environments"].size(), 2u);
  EXPECT_EQ(summary["environments"][1]["name"], "jpeg");
  EXPECT_TRUE(summary.contains("instability"));
  EXPECT_TRUE(summary.contains("instability_top3"));
  auto again = run_cli(command);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("0 answers computed, 16 already recorded"), std::string::npos) << again.output;
  auto one_env = run_cli("stability run --model " + card.card_path + " --data " + dir.file("data") + " --out " +
                         dir.file("run2") + " --env 'png=decode:libpng'");
  EXPECT_EQ(one_env.exit_code, 1);
  EXPECT_NE(one_env.output.find("at least two"), std::string::npos) << one_env.output;
}

}  // namespace edgefleet
