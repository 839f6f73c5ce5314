#include "edgefleet/results_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_support.h"

namespace edgefleet {
namespace {

using testing::TempDir;

const std::vector<StoredEnvironment> kEnvironments = {{"ref", "decode:turbojpeg"}, {"fast", "decode:turbojpeg,dct=ifast"}};

std::vector<StoredInput> inputs(int n) {
  std::vector<StoredInput> out;
  for (int i = 0; i < n; ++i) out.push_back({"img" + std::to_string(i), i % 3});
  return out;
}

ResultRow row(int input, int environment, int top) {
  ResultRow r;
  r.input = input;
  r.environment = environment;
  r.prediction.classes = {top, (top + 1) % 3};
  r.prediction.probabilities = {0.75f, 0.25f};
  return r;
}

TEST(ResultsStore, RecordsPredictionsAndFailuresAndReadsThemBack) {
  TempDir dir;
  auto store = ResultsStore::open(dir.file("results.sqlite")).value();
  ASSERT_TRUE(store->begin("model=m data=d", kEnvironments, inputs(2)).is_ok());
  ResultRow failed;
  failed.input = 1;
  failed.environment = 1;
  failed.error = "corrupt: img1: truncated JPEG";
  ASSERT_TRUE(store->record({row(0, 0, 0), row(0, 1, 2), row(1, 0, 1), failed}).is_ok());
  const PredictionTable table = store->table().value();
  ASSERT_EQ(table.environments, (std::vector<std::string>{"ref", "fast"}));
  EXPECT_EQ(table.labels, (std::vector<int>{0, 1}));
  EXPECT_EQ(table.predictions[0][1].classes, (std::vector<int>{2, 0}));
  EXPECT_FLOAT_EQ(table.predictions[0][1].probabilities[0], 0.75f);
  EXPECT_TRUE(table.predictions[1][1].empty());
  const auto failures = store->failures().value();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].error, "corrupt: img1: truncated JPEG");
  EXPECT_EQ(store->recorded().value().size(), 4u);
}

TEST(ResultsStore, RecordingARowAgainReplacesIt) {
  TempDir dir;
  auto store = ResultsStore::open(dir.file("r.sqlite")).value();
  ASSERT_TRUE(store->begin("run", kEnvironments, inputs(1)).is_ok());
  ASSERT_TRUE(store->record({row(0, 0, 0)}).is_ok());
  ASSERT_TRUE(store->record({row(0, 0, 2)}).is_ok());
  EXPECT_EQ(store->recorded().value().size(), 1u);
  EXPECT_EQ(store->table().value().predictions[0][0].classes[0], 2);
}

TEST(ResultsStore, ResumingRefusesAnotherRun) {
  TempDir dir;
  {
    auto store = ResultsStore::open(dir.file("r.sqlite")).value();
    ASSERT_TRUE(store->begin("model=a", kEnvironments, inputs(3)).is_ok());
    ASSERT_TRUE(store->record({row(2, 1, 1)}).is_ok());
  }
  auto store = ResultsStore::open(dir.file("r.sqlite")).value();
  EXPECT_TRUE(store->begin("model=a", kEnvironments, inputs(3)).is_ok());
  EXPECT_EQ(store->recorded().value(), (std::set<std::pair<int, int>>{{2, 1}}));
  const Status other_model = store->begin("model=b", kEnvironments, inputs(3));
  EXPECT_EQ(other_model.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other_model.message().find("another run"), std::string::npos);
  auto changed = kEnvironments;
  changed[1].spec = "decode:opencv";
  EXPECT_NE(store->begin("model=a", changed, inputs(3)).message().find("environment 1"), std::string::npos);
}

TEST(ResultsStore, AKillDuringWritingLosesOnlyTheBatchInFlight) {
  TempDir dir;
  const std::string path = dir.file("r.sqlite");
  {
    auto store = ResultsStore::open(path).value();
    ASSERT_TRUE(store->begin("run", kEnvironments, inputs(100000)).is_ok());
  }
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = ResultsStore::open(path).value();
    for (int batch = 0;; ++batch) {  // batches of 10 rows until killed
      std::vector<ResultRow> rows;
      for (int i = 0; i < 10; ++i) rows.push_back(row(batch * 10 + i, 0, i % 3));
      if (!store->record(rows).is_ok()) _exit(3);
    }
  }
  usleep(300 * 1000);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  auto store = ResultsStore::open(path).value();
  const auto done = store->recorded().value();
  EXPECT_GT(done.size(), 0u);
  EXPECT_EQ(done.size() % 10, 0u) << "a partial batch was committed";
  // Rows are exactly the first batches, none missing in between.
  int expected_input = 0;
  for (const auto& [input, environment] : done) EXPECT_EQ(input, expected_input++);
}

TEST(ResultsStore, ShardsMergeIntoOneStore) {
  TempDir dir;
  for (int shard = 0; shard < 2; ++shard) {
    auto store = ResultsStore::open(dir.file("shard" + std::to_string(shard) + ".sqlite")).value();
    ASSERT_TRUE(store->begin("run", kEnvironments, inputs(4)).is_ok());
    ASSERT_TRUE(store->record({row(shard * 2, 0, 0), row(shard * 2, 1, 0), row(shard * 2 + 1, 0, 1), row(shard * 2 + 1, 1, 1)}).is_ok());
  }
  auto merged = ResultsStore::open(dir.file("merged.sqlite")).value();
  ASSERT_TRUE(merged->merge_from(dir.file("shard0.sqlite")).is_ok());
  ASSERT_TRUE(merged->merge_from(dir.file("shard1.sqlite")).is_ok());
  EXPECT_EQ(merged->recorded().value().size(), 8u);
  EXPECT_EQ(merged->inputs().value().size(), 4u);
  auto other = ResultsStore::open(dir.file("other.sqlite")).value();
  ASSERT_TRUE(other->begin("another run", kEnvironments, inputs(4)).is_ok());
  EXPECT_EQ(merged->merge_from(dir.file("other.sqlite")).code(), StatusCode::kInvalidArgument);
}

TEST(ResultsStore, AFileThatIsNotAStoreIsCorrupt) {
  TempDir dir;
  testing::write_text(dir.file("junk.sqlite"), std::string(4096, 'x'));
  const Status status = ResultsStore::open(dir.file("junk.sqlite")).status();
  EXPECT_EQ(status.code(), StatusCode::kCorrupt) << status.to_string();
}

}  // namespace
}  // namespace edgefleet
