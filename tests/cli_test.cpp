// Runs the real edgefleet binary and checks exit codes and messages.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "edgefleet/results_store.h"
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

// DIR/data/{a,b}/: `per_class` different 28x28 gray pictures in each of two classes.
void write_two_class_folder(const testing::TempDir& dir, int per_class) {
  for (int i = 0; i < per_class; ++i) {
    testing::write_png(dir.file("data/a/" + std::to_string(i) + ".png"), 28, 28, 1, i);
    testing::write_png(dir.file("data/b/" + std::to_string(i) + ".png"), 28, 28, 1, 10 + i);
  }
}

}  // namespace

TEST(Cli, UnknownFlagPrintsUsageAndFails) {
  auto r = run_cli("eval --model x --no-such-flag");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--no-such-flag"), std::string::npos);
}

TEST(Cli, NoSubcommandFails) { EXPECT_NE(run_cli("").exit_code, 0); }

TEST(Cli, EverySubcommandHasHelp) {
  for (const char* command : {"zoo", "eval", "fleet", "fleet show", "simulate", "profile", "pipeline", "stability", "harden", "serve",
                              "repository", "infer", "port", "peers", "peers run", "peers device", "peers coordinator", "branches",
                              "branches build", "branches bench", "branches scenario", "prune", "device", "device calibrate",
                              "device predict"}) {
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

TEST(Cli, PruneWritesASmallerModelThatLoadsAndRuns) {
  testing::TempDir dir;
  const std::string base = std::string(EDGEFLEET_SOURCE_DIR) + "/models/fashion-mnist/resnet_s.json";
  auto r = run_cli("prune --model " + base + " --macs 0.5 --out " + dir.file("out/resnet_half.pt") + " --json", true);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_LE(j["macs"].get<double>(), 0.5 * j["base_macs"].get<double>());
  EXPECT_LT(j["params"].get<double>(), j["base_params"].get<double>());
  write_two_class_folder(dir, 2);
  auto eval = run_cli("eval --model " + dir.file("out/resnet_half.json") + " --data " + dir.file("data") + " --json", true);
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_EQ(nlohmann::json::parse(eval.output)["images"], 4);
}

TEST(Cli, PruneBelowTheNarrowestWidthsIsOneLineError) {
  testing::TempDir dir;
  const std::string base = std::string(EDGEFLEET_SOURCE_DIR) + "/models/fashion-mnist/cnn_tiny.json";
  auto r = run_cli("prune --model " + base + " --macs 0.05 --out " + dir.file("tiny.pt"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output.rfind("edgefleet: invalid_argument: prune: cnn_tiny cannot reach", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1);
  EXPECT_FALSE(std::filesystem::exists(dir.file("tiny.pt")));
}

TEST(Cli, PruneBySensitivityWithoutPhotosIsOneLineError) {
  testing::TempDir dir;
  const std::string base = std::string(EDGEFLEET_SOURCE_DIR) + "/models/fashion-mnist/cnn_tiny.json";
  auto r = run_cli("prune --model " + base + " --macs 0.9 --allocation sensitivity --out " + dir.file("tiny.pt"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("needs photos to measure it on (--data)"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1);
  auto bad = run_cli("prune --model " + base + " --allocation greedy --out " + dir.file("tiny.pt"));
  EXPECT_NE(bad.exit_code, 0);
}

TEST(Cli, ExportWritesAnOnnxCopyThatOpenCvRuns) {
  testing::TempDir dir;
  const std::string base = std::string(EDGEFLEET_SOURCE_DIR) + "/models/fashion-mnist/mobilenetv2_w035.json";
  auto r = run_cli("export --model " + base + " --out " + dir.file("m.onnx") + " --json", true);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_LT(j["max_relative_error"].get<double>(), 1e-4);
  EXPECT_TRUE(j["dynamic_batch"].get<bool>());
  write_two_class_folder(dir, 2);
  auto eval = run_cli("eval --model " + dir.file("m.onnx") + " --data " + dir.file("data") + " --json", true);
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_EQ(nlohmann::json::parse(eval.output)["images"], 4);
  auto missing = run_cli("export --model " + dir.file("none.json"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(std::count(missing.output.begin(), missing.output.end(), '\n'), 1) << missing.output;
}

TEST(Cli, DeviceCalibrateWritesALatencyModelThatPredicts) {
  testing::TempDir dir;
  auto r = run_cli("device calibrate --out " + dir.file("latency.json") + " --kernels 4 --networks 6 --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream written(dir.file("latency.json"));
  const auto latency_model = nlohmann::json::parse(written)["latency_model"];
  // Both graphs the Classifier may run have their kernels timed; each network counts for the
  // graph its Classifier chose.
  ASSERT_TRUE(latency_model.contains("frozen"));
  const auto networks_of = [](const nlohmann::json& g) { return g.contains("context") ? g["context"]["networks"].get<int>() : 0; };
  EXPECT_EQ(networks_of(latency_model) + networks_of(latency_model["frozen"]), 6);
  const std::string model = std::string(EDGEFLEET_SOURCE_DIR) + "/models/fashion-mnist/resnet_s.json";
  auto p = run_cli("device predict --latency-model " + dir.file("latency.json") + " --model " + model + " --measure --rounds 1 --json", true);
  ASSERT_EQ(p.exit_code, 0) << p.output;
  const auto j = nlohmann::json::parse(p.output);
  EXPECT_GT(j["predicted_ms"].get<double>(), 0.0);
  EXPECT_GT(j["measured_ms"].get<double>(), 0.0);
  EXPECT_TRUE(j["graph"] == "optimized" || j["graph"] == "frozen") << j;
  auto missing = run_cli("device predict --latency-model " + dir.file("none.json") + " --model " + model);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(std::count(missing.output.begin(), missing.output.end(), '\n'), 1) << missing.output;
}

TEST(Cli, InvalidDeviceProfileFailsValidation) {
  testing::TempDir dir;
  testing::write_text(dir.file("bad.json"), R"({"name": "Bad Name"})");
  auto r = run_cli("fleet validate " + dir.file("bad.json"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("field 'name' is 'Bad Name'"), std::string::npos);
}

TEST(Cli, FleetShowPrintsADevicesParsedEnvironment) {
  auto r = run_cli("fleet show iphone-xr");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("encode:heif,quality=80"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("precision=fp16"), std::string::npos) << r.output;
  auto missing = run_cli("fleet show iphone-99");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("no device 'iphone-99'"), std::string::npos) << missing.output;
}

TEST(Cli, NamedChoicesAreCheckedByTheParser) {
  auto r = run_cli("port no-such-config.json --out /tmp/x --algorithm pruneit");
  EXPECT_EQ(r.exit_code, 2) << r.output;  // a usage error, before the config is read
  EXPECT_NE(r.output.find("pruneit"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("morphnet"), std::string::npos) << r.output;
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

TEST(Cli, PipelineProfileTimesEachStageOfEachPipeline) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.file("pictures"));
  testing::write_png(dir.file("pictures/a.png"), 40, 30, 3);
  testing::write_png(dir.file("pictures/b.png"), 36, 28, 3);
  auto r = run_cli("pipeline profile 'encode:jpeg,quality=50|decode:turbojpeg|resize:opencv,area,20x10' "
                   "'camera:opencv,seed=1' --data " + dir.file("pictures") + " --json " + dir.file("times.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("2 pictures"), std::string::npos) << r.output;
  std::ifstream in(dir.file("times.json"));
  const auto times = nlohmann::json::parse(in);
  ASSERT_EQ(times["pipelines"].size(), 2u);
  // The file is decoded first (decode:auto), then each stage of the spec is its own row.
  const auto& first = times["pipelines"][0]["stages"];
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(first[0]["stage"], "decode:auto");
  EXPECT_EQ(first[1]["stage"], "encode:jpeg,quality=50");
  double sum = 0;
  for (const auto& stage : first) {
    EXPECT_GE(stage["ms_per_picture"].get<double>(), 0.0);
    sum += stage["ms_per_picture"].get<double>();
  }
  EXPECT_NEAR(times["pipelines"][0]["ms_per_picture"].get<double>(), sum, 1e-6);
  EXPECT_EQ(times["pipelines"][1]["stages"].size(), 2u);
}

TEST(Cli, PipelineProfileFailsOnACorruptPictureInOneLine) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.file("pictures"));
  std::ofstream(dir.file("pictures/broken.jpg")) << "not a jpeg";
  auto r = run_cli("pipeline profile 'resize:opencv,area,20x10' --data " + dir.file("pictures"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("broken.jpg"), std::string::npos) << r.output;
  auto none = run_cli("pipeline profile --data " + dir.file("pictures"));
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("give a pipeline spec or --fleet"), std::string::npos) << none.output;
  auto unbound = run_cli("pipeline profile 'resize:opencv,area,model' --data " + dir.file("pictures"));
  EXPECT_EQ(unbound.exit_code, 1);
  EXPECT_NE(unbound.output.find("give --model"), std::string::npos) << unbound.output;
}

TEST(Cli, StabilityRunWritesSummaryAndResumes) {
  testing::TempDir dir;
  write_two_class_folder(dir, 4);
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

TEST(Cli, StabilityOnThePhonesFleetVariesTheCaptureAndRepeatsSessions) {
  testing::TempDir dir;
  write_two_class_folder(dir, 1);
  const ModelCard card = testing::write_tiny_model(dir.path());
  auto r = run_cli("stability run --model " + card.card_path + " --data " + dir.file("data") + " --out " + dir.file("run") +
                   " --fleet phones --vary capture --repeats 2 --common-isp camera:opencv,demosaic=ea");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto summary = nlohmann::json::parse(testing::read_text(dir.file("run/summary.json")));
  ASSERT_EQ(summary["environments"].size(), 10u);
  EXPECT_EQ(summary["environments"][0]["name"], "galaxy-s10/r1");
  EXPECT_EQ(summary["per_source"].size(), 5u);  // one repeat-instability figure per phone
  auto no_fleet = run_cli("stability run --model " + card.card_path + " --data " + dir.file("data") + " --out " +
                          dir.file("run2") + " --axis precision --vary capture");
  EXPECT_EQ(no_fleet.exit_code, 1);
  EXPECT_NE(no_fleet.output.find("give --fleet"), std::string::npos) << no_fleet.output;
  auto bad_isp = run_cli("stability run --model " + card.card_path + " --data " + dir.file("data") + " --out " +
                         dir.file("run3") + " --fleet phones --common-isp encode:png");
  EXPECT_EQ(bad_isp.exit_code, 1);
  EXPECT_NE(bad_isp.output.find("--common-isp: 'encode:png' is not a camera stage"), std::string::npos) << bad_isp.output;
}


TEST(Cli, StabilityAxesReportEachSourceSeparately) {
  testing::TempDir dir;
  write_two_class_folder(dir, 5);
  const ModelCard card = testing::write_tiny_model(dir.path());
  // --limit 8 holds the last 2 pictures out for INT8 calibration.
  auto r = run_cli("stability run --model " + card.card_path + " --data " + dir.file("data") + " --out " + dir.file("run") +
                   " --axis precision --axis ceil-mode --limit 8");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("INT8 calibration: 2 inputs"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("fp16 emulated"), std::string::npos) << r.output;
  std::ifstream in(dir.file("run/summary.json"));
  const auto summary = nlohmann::json::parse(in);
  EXPECT_EQ(summary["images"], 8);
  ASSERT_EQ(summary["environments"].size(), 7u);
  EXPECT_EQ(summary["environments"][2]["spec"],
            "decode:auto|resize:opencv,linear,28x28|crop:center,28|infer:precision=fp16");
  ASSERT_EQ(summary["per_source"].size(), 2u);
  const auto& precision = summary["per_source"][0];
  EXPECT_EQ(precision["source"], "precision");
  EXPECT_EQ(precision["baseline"], "precision/fp32");
  EXPECT_EQ(precision["environments"].size(), 5u);
  EXPECT_LE(precision["instability"].get<double>(), precision["disagreement"].get<double>());
  EXPECT_LE(summary["per_source"][1]["instability"].get<double>(), summary["instability"].get<double>());

  auto unknown = run_cli("stability run --model " + card.card_path + " --data " + dir.file("data") + " --out " +
                         dir.file("run2") + " --axis weather");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("jpeg-quality"), std::string::npos) << unknown.output;
  auto no_calibration = run_cli("stability run --model " + card.card_path + " --data " + dir.file("data") + " --out " +
                                dir.file("run3") + " --axis precision");
  EXPECT_EQ(no_calibration.exit_code, 1);
  EXPECT_NE(no_calibration.output.find("--calibration"), std::string::npos) << no_calibration.output;
}


// kill -9 in the middle of a run, then the same command again: the store ends equal to an
// uninterrupted run's, with every answer once.
TEST(Cli, StabilityRunKilledMidwayResumesToTheUninterruptedResult) {
  testing::TempDir dir;
  for (int i = 0; i < 40; ++i) {
    testing::write_png(dir.file("data/" + std::string(i % 2 ? "a/" : "b/") + std::to_string(i) + ".png"), 96, 96, 3, i);
  }
  const ModelCard card = testing::write_tiny_model(dir.path());
  auto arguments = [&](const std::string& out) {
    return std::vector<std::string>{EDGEFLEET_CLI_PATH, "stability", "run", "--model", card.card_path, "--data",
                                    dir.file("data"), "--out", out, "--batch", "2", "--threads", "1",
                                    "--env", "a=decode:libpng|camera:opencv,denoise=5|resize:opencv,area,28x28",
                                    "--env", "b=decode:libpng|camera:libraw,demosaic=ahd|resize:opencv,area,28x28"};
  };
  auto quoted = [](const std::vector<std::string>& args, std::size_t from) {
    std::string line;
    for (std::size_t i = from; i < args.size(); ++i) line += "'" + args[i] + "' ";
    return line;
  };
  ASSERT_EQ(std::system((quoted(arguments(dir.file("whole")), 0) + ">/dev/null 2>&1").c_str()), 0);

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const auto args = arguments(dir.file("killed"));
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    freopen("/dev/null", "w", stdout);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const std::string store_path = dir.file("killed/results.sqlite");
  std::size_t at_kill = 0;
  for (int tries = 0; tries < 20000 && at_kill < 4; ++tries) {
    usleep(1000);
    if (!std::ifstream(store_path).good()) continue;
    auto store = ResultsStore::open(store_path);
    if (!store) continue;
    auto recorded = (*store)->recorded();
    if (recorded) at_kill = recorded->size();
  }
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  ASSERT_GE(at_kill, 4u);
  ASSERT_LT(at_kill, 80u);

  auto resumed = run_cli(quoted(arguments(dir.file("killed")), 1));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(resumed.output.find(" 0 already recorded"), std::string::npos) << resumed.output;
  const PredictionTable whole = ResultsStore::open(dir.file("whole/results.sqlite")).value()->table().value();
  const PredictionTable killed = ResultsStore::open(store_path).value()->table().value();
  EXPECT_EQ(ResultsStore::open(store_path).value()->recorded().value().size(), 80u);
  ASSERT_EQ(killed.predictions.size(), whole.predictions.size());
  EXPECT_EQ(killed.environments, whole.environments);
  EXPECT_EQ(killed.labels, whole.labels);
  for (std::size_t i = 0; i < whole.predictions.size(); ++i) {
    for (std::size_t e = 0; e < 2; ++e) {
      const Prediction& a = whole.predictions[i][e];
      const Prediction& b = killed.predictions[i][e];
      ASSERT_EQ(a.classes, b.classes) << i << " " << e;
      for (std::size_t k = 0; k < a.probabilities.size(); ++k) EXPECT_NEAR(a.probabilities[k], b.probabilities[k], 1e-5);
    }
  }
}

// The release gate end to end: a rerun of the same run passes (exit 0); a run whose answers
// clearly changed more (an environment that crushes the picture added) fails it (exit 1).
TEST(Cli, StabilityCheckPassesARerunAndFailsAClearlyWorseRun) {
  if (!testing::fashion_mnist_installed()) GTEST_SKIP() << "Fashion-MNIST (Debian dataset-fashion-mnist) is not installed";
  testing::TempDir dir;
  // A trained model (the built-in zoo's cnn_tiny) on real pictures; "crushed" blurs each to 7x7.
  const auto run = [&](const std::string& out, const std::string& extra_env) {
    return run_cli("stability run --model cnn_tiny --data fashion-mnist:test --limit 200 --threads 1 "
                   "--env 'a=resize:opencv,area,28x28' --env 'b=resize:opencv,linear,28x28' " + extra_env + " --out '" +
                   dir.file(out) + "'");
  };
  ASSERT_EQ(run("old", "").exit_code, 0);
  ASSERT_EQ(run("same", "").exit_code, 0);
  ASSERT_EQ(run("worse", "--env 'crushed=resize:opencv,nearest,7x7|resize:opencv,nearest,28x28'").exit_code, 0);
  const auto same = run_cli("stability check --baseline '" + dir.file("old/summary.json") + "' --out '" + dir.file("same") + "'");
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_NE(same.output.find("gate passed"), std::string::npos) << same.output;
  const auto worse = run_cli("stability check --baseline '" + dir.file("old/summary.json") + "' --out '" + dir.file("worse") + "'");
  EXPECT_EQ(worse.exit_code, 1) << worse.output;
  EXPECT_NE(worse.output.find("ROSE"), std::string::npos) << worse.output;
  EXPECT_TRUE(std::ifstream(dir.file("worse/check.json")).good());
  const auto missing = run_cli("stability check --baseline '" + dir.file("nope/summary.json") + "' --out '" + dir.file("same") + "'");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("no summary"), std::string::npos) << missing.output;
}

// explain on a run: for its most unstable inputs, the stage that flips them, in explain.json.
TEST(Cli, StabilityExplainNamesTheStageThatFlipsARunsUnstableInputs) {
  if (!testing::fashion_mnist_installed()) GTEST_SKIP() << "Fashion-MNIST (Debian dataset-fashion-mnist) is not installed";
  testing::TempDir dir;
  ASSERT_EQ(run_cli("stability run --model cnn_tiny --data fashion-mnist:test --limit 60 --threads 1 "
                    "--env 'a=resize:opencv,area,28x28' --env 'crushed=resize:opencv,nearest,7x7|resize:opencv,nearest,28x28' --out '" +
                    dir.file("run") + "'").exit_code,
            0);
  const auto r = run_cli("stability explain --out '" + dir.file("run") + "' --model cnn_tiny --data fashion-mnist:test --top 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(dir.file("run/explain.json"));
  const auto explained = nlohmann::json::parse(in);
  ASSERT_EQ(explained.size(), 2u) << r.output;
  for (const auto& e : explained) {
    EXPECT_EQ(e["from"], "a");
    EXPECT_EQ(e["to"], "crushed");
    ASSERT_FALSE(e["culprit"].empty());
    EXPECT_NE(e["culprit"].dump().find("7x7"), std::string::npos) << e.dump(2);
    EXPECT_FALSE(e["activations"]["layers"].empty()) << e.dump(2);
  }
  // The summary carries them and the report's gallery links to each.
  std::ifstream summary_file(dir.file("run/summary.json"));
  EXPECT_EQ(nlohmann::json::parse(summary_file)["explanations"].size(), 2u);
  const std::string report = testing::read_text(dir.file("run/report.html"));
  EXPECT_NE(report.find("Why they flip"), std::string::npos);
  EXPECT_NE(report.find("why it flips"), std::string::npos);
}

// Shards merged while one is still missing: the merge says which and exits 75 (retry later);
// once the last shard is there, merging again gives the whole run.
TEST(Cli, StabilityMergeSaysWhichShardsAreMissingAndCanRunAgain) {
  testing::TempDir dir;
  for (int i = 0; i < 12; ++i) testing::write_png(dir.file("data/c/" + std::to_string(i) + ".png"), 32, 32, 3, i);
  const ModelCard card = testing::write_tiny_model(dir.path());
  const auto run_shard = [&](const std::string& shard) {
    return run_cli("stability run --model '" + card.card_path + "' --data '" + dir.file("data") +
                   "' --threads 1 --env 'a=decode:libpng' --env 'b=decode:opencv' --out '" + dir.file("run") + "' " + shard);
  };
  ASSERT_EQ(run_shard("--shard 0/3").exit_code, 0);
  ASSERT_EQ(run_shard("--shard 2/3").exit_code, 0);
  const auto partial = run_cli("stability merge --out '" + dir.file("run") + "'");
  EXPECT_EQ(partial.exit_code, 75) << partial.output;
  EXPECT_NE(partial.output.find("missing: 1"), std::string::npos) << partial.output;
  ASSERT_EQ(run_shard("--shard 1/3").exit_code, 0);
  const auto whole = run_cli("stability merge --out '" + dir.file("run") + "'");
  EXPECT_EQ(whole.exit_code, 0) << whole.output;
  EXPECT_NE(whole.output.find("merged all 3 shards"), std::string::npos) << whole.output;
  EXPECT_EQ(ResultsStore::open(dir.file("run/results.sqlite")).value()->recorded().value().size(), 24u);
  const auto bad = run_shard("--shard 3/3");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("not below the count"), std::string::npos) << bad.output;
}

TEST(Cli, HardenWritesTheModelItsCardAndTheTable) {
  testing::TempDir dir;
  write_two_class_folder(dir, 10);
  const ModelCard card = testing::write_tiny_model(dir.file("model"));
  auto r = run_cli("harden --model " + card.card_path + " --data " + dir.file("data") + " --out " + dir.file("out/hard.pt") +
                   " --noise paired --loss kl --alpha 1 --epochs 1 --train-images 8 --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("no noise"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("paired"), std::string::npos);
  const ModelCard hardened = read_card(dir.file("out/hard.json")).value();
  EXPECT_EQ(hardened.training["base_model"], "tiny");
  EXPECT_TRUE(std::filesystem::exists(dir.file("out/hard.hardening/report.html")));
}

TEST(Cli, HardenRefusesUnknownNoiseAndDevicesInOneLine) {
  testing::TempDir dir;
  write_two_class_folder(dir, 5);
  const ModelCard card = testing::write_tiny_model(dir.file("model"));
  const std::string common = "harden --model " + card.card_path + " --data " + dir.file("data") + " --out " + dir.file("o.pt");
  auto r = run_cli(common + " --noise salt");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output.rfind("edgefleet: invalid_argument: unknown noise 'salt'", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1);
  r = run_cli(common + " --optimizer adam");
  EXPECT_EQ(r.exit_code, 2) << r.output;  // a usage error
  EXPECT_EQ(r.output.rfind("--optimizer: adam not in {sgd,adamw}", 0), 0u) << r.output;
  r = run_cli(common + " --holdout no-such-phone");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("'no-such-phone' is not a device of the fleet"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("o.pt")));
}

}  // namespace edgefleet
