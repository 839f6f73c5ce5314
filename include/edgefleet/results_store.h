// ResultsStore: the SQLite file a stability run writes its predictions into, one row per
// (input, environment). Rows are written in transactions, so a killed run loses at most the
// batch in flight and a resumed run neither repeats nor duplicates a row. Shards of one run
// (different inputs) merge into one store. One store per thread (SQLite connection).
#pragma once

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "edgefleet/instability.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct StoredEnvironment {
  std::string name;
  std::string spec;  // pipeline and inference setting, canonical
};

struct StoredInput {
  std::string name;  // file or dataset item
  int label = -1;
};

// One answer: a prediction, or the reason the environment could not answer that input.
struct ResultRow {
  int input = 0;
  int environment = 0;
  Prediction prediction;
  std::string error;
};

class ResultsStore {
 public:
  // Opens or creates the store at `path`.
  static Expected<std::unique_ptr<ResultsStore>> open(const std::string& path);
  ~ResultsStore();
  ResultsStore(const ResultsStore&) = delete;
  ResultsStore& operator=(const ResultsStore&) = delete;

  // Records what the run is (model, data, environments, inputs) the first time; afterwards
  // checks that a resumed run is the same run and fails with invalid_argument naming the
  // difference otherwise. class_count > 0 records the model's number of classes, which
  // bounds the class ids table() accepts.
  Status begin(const std::string& fingerprint, const std::vector<StoredEnvironment>& environments,
               const std::vector<StoredInput>& inputs, int class_count = 0);

  // The (input, environment) pairs already recorded.
  Expected<std::set<std::pair<int, int>>> recorded() const;

  // Writes rows in one transaction (replacing rows with the same key).
  Status record(const std::vector<ResultRow>& rows);

  // Copies every row of `other` (a shard of the same run) that this store lacks.
  Status merge_from(const std::string& other_path);

  Expected<std::vector<StoredEnvironment>> environments() const;
  Expected<std::vector<StoredInput>> inputs() const;
  // Failed rows as (input, environment, reason).
  Expected<std::vector<ResultRow>> failures() const;
  // Every recorded prediction as a table (missing or failed answers are empty predictions).
  // A row that does not hold class ids (below the model's class count, when begin() was
  // given it) and probabilities in [0, 1] makes the store corrupt.
  Expected<PredictionTable> table() const;

 private:
  struct Connection;
  explicit ResultsStore(std::unique_ptr<Connection> connection);
  std::unique_ptr<Connection> db_;
};

}  // namespace edgefleet
