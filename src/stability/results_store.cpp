#include "edgefleet/results_store.h"

#include <sqlite3.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

namespace edgefleet {

struct ResultsStore::Connection {
  sqlite3* db = nullptr;
  std::string path;
  ~Connection() { sqlite3_close(db); }
};

namespace {

// A prepared statement, finalised when it goes out of scope.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { prepared_ = sqlite3_prepare_v2(db, sql, -1, &statement_, nullptr) == SQLITE_OK; }
  ~Statement() { sqlite3_finalize(statement_); }
  bool ok() const { return prepared_; }
  sqlite3_stmt* get() const { return statement_; }

 private:
  sqlite3_stmt* statement_ = nullptr;
  bool prepared_ = false;
};

Status sql_error(sqlite3* db, const std::string& path, const std::string& what) {
  return io_error("results store '" + path + "': " + what + ": " + sqlite3_errmsg(db));
}

Status exec(sqlite3* db, const std::string& path, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    const std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    return io_error("results store '" + path + "': " + text);
  }
  return Status::ok();
}

std::string text_column(sqlite3_stmt* s, int column) {
  const auto* text = sqlite3_column_text(s, column);
  return text ? reinterpret_cast<const char*>(text) : "";
}

// The run a store holds, or "" when it holds none yet.
std::string stored_fingerprint(sqlite3* db) {
  Statement get(db, "SELECT value FROM meta WHERE key = 'fingerprint'");
  return get.ok() && sqlite3_step(get.get()) == SQLITE_ROW ? text_column(get.get(), 0) : "";
}

}  // namespace

ResultsStore::ResultsStore(std::unique_ptr<Connection> connection) : db_(std::move(connection)) {}
ResultsStore::~ResultsStore() = default;

// The model's class count recorded by begin(); 0 when the store predates it or lacks it.
int stored_class_count(sqlite3* db) {
  Statement get(db, "SELECT value FROM meta WHERE key = 'classes'");
  if (!get.ok() || sqlite3_step(get.get()) != SQLITE_ROW) return 0;
  const char* text = reinterpret_cast<const char*>(sqlite3_column_text(get.get(), 0));
  const long value = text ? std::strtol(text, nullptr, 10) : 0;
  return value > 0 && value < (1 << 24) ? static_cast<int>(value) : 0;
}

Expected<std::unique_ptr<ResultsStore>> ResultsStore::open(const std::string& path) {
  auto connection = std::make_unique<Connection>();
  connection->path = path;
  if (sqlite3_open_v2(path.c_str(), &connection->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    return io_error("results store '" + path + "': cannot open: " + sqlite3_errmsg(connection->db));
  }
  sqlite3_busy_timeout(connection->db, 10000);
  // WAL: readers do not block the writer, and a killed writer leaves the last committed state.
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                          "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
                          "CREATE TABLE IF NOT EXISTS environments(id INTEGER PRIMARY KEY, name TEXT NOT NULL, spec TEXT NOT NULL)",
                          "CREATE TABLE IF NOT EXISTS inputs(id INTEGER PRIMARY KEY, name TEXT NOT NULL, label INTEGER NOT NULL)",
                          "CREATE TABLE IF NOT EXISTS results(input INTEGER NOT NULL, environment INTEGER NOT NULL, "
                          "classes TEXT NOT NULL, probabilities TEXT NOT NULL, error TEXT NOT NULL, "
                          "PRIMARY KEY(input, environment))"}) {
    if (Status s = exec(connection->db, path, sql); !s.is_ok()) {
      if (s.message().find("file is not a database") != std::string::npos) {
        return corrupt("results store '" + path + "' is not an SQLite database");
      }
      return s;
    }
  }
  return std::unique_ptr<ResultsStore>(new ResultsStore(std::move(connection)));
}

Status ResultsStore::begin(const std::string& fingerprint, const std::vector<StoredEnvironment>& environments,
                           const std::vector<StoredInput>& inputs, int class_count) {
  sqlite3* db = db_->db;
  const std::string stored = stored_fingerprint(db);
  if (!stored.empty()) {
    if (stored != fingerprint) {
      return invalid_argument("results store '" + db_->path + "' holds another run (" + stored + "), not " + fingerprint +
                              "; use a new --out folder");
    }
    auto stored_environments = this->environments();
    if (!stored_environments) return stored_environments.status();
    if (stored_environments->size() != environments.size()) {
      return invalid_argument("results store '" + db_->path + "' has " + std::to_string(stored_environments->size()) +
                              " environments, this run " + std::to_string(environments.size()));
    }
    for (std::size_t i = 0; i < environments.size(); ++i) {
      if ((*stored_environments)[i].spec != environments[i].spec) {
        return invalid_argument("results store '" + db_->path + "': environment " + std::to_string(i) + " was '" +
                                (*stored_environments)[i].spec + "', now '" + environments[i].spec + "'");
      }
    }
    auto stored_inputs = this->inputs();
    if (!stored_inputs) return stored_inputs.status();
    if (stored_inputs->size() != inputs.size()) {
      return invalid_argument("results store '" + db_->path + "' has " + std::to_string(stored_inputs->size()) +
                              " inputs, this run " + std::to_string(inputs.size()));
    }
    return Status::ok();
  }
  if (Status s = exec(db, db_->path, "BEGIN IMMEDIATE"); !s.is_ok()) return s;
  bool ok = true;
  {
    Statement meta(db, "INSERT INTO meta(key, value) VALUES('fingerprint', ?1)");
    sqlite3_bind_text(meta.get(), 1, fingerprint.c_str(), -1, SQLITE_TRANSIENT);
    ok = meta.ok() && sqlite3_step(meta.get()) == SQLITE_DONE;
    if (ok && class_count > 0) {
      Statement classes(db, "INSERT INTO meta(key, value) VALUES('classes', ?1)");
      sqlite3_bind_text(classes.get(), 1, std::to_string(class_count).c_str(), -1, SQLITE_TRANSIENT);
      ok = classes.ok() && sqlite3_step(classes.get()) == SQLITE_DONE;
    }
    Statement env(db, "INSERT INTO environments(id, name, spec) VALUES(?1, ?2, ?3)");
    for (std::size_t i = 0; ok && i < environments.size(); ++i) {
      sqlite3_reset(env.get());
      sqlite3_bind_int(env.get(), 1, static_cast<int>(i));
      sqlite3_bind_text(env.get(), 2, environments[i].name.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(env.get(), 3, environments[i].spec.c_str(), -1, SQLITE_TRANSIENT);
      ok = sqlite3_step(env.get()) == SQLITE_DONE;
    }
    Statement in(db, "INSERT INTO inputs(id, name, label) VALUES(?1, ?2, ?3)");
    for (std::size_t i = 0; ok && i < inputs.size(); ++i) {
      sqlite3_reset(in.get());
      sqlite3_bind_int(in.get(), 1, static_cast<int>(i));
      sqlite3_bind_text(in.get(), 2, inputs[i].name.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int(in.get(), 3, inputs[i].label);
      ok = sqlite3_step(in.get()) == SQLITE_DONE;
    }
  }
  if (!ok) {
    Status error = sql_error(db, db_->path, "recording the run");
    exec(db, db_->path, "ROLLBACK");
    return error;
  }
  return exec(db, db_->path, "COMMIT");
}

Expected<std::set<std::pair<int, int>>> ResultsStore::recorded() const {
  Statement s(db_->db, "SELECT input, environment FROM results");
  if (!s.ok()) return sql_error(db_->db, db_->path, "reading results");
  std::set<std::pair<int, int>> done;
  while (sqlite3_step(s.get()) == SQLITE_ROW) done.emplace(sqlite3_column_int(s.get(), 0), sqlite3_column_int(s.get(), 1));
  return done;
}

Status ResultsStore::record(const std::vector<ResultRow>& rows) {
  sqlite3* db = db_->db;
  if (Status s = exec(db, db_->path, "BEGIN IMMEDIATE"); !s.is_ok()) return s;
  bool ok = true;
  {
    Statement insert(db,
                     "INSERT OR REPLACE INTO results(input, environment, classes, probabilities, error) "
                     "VALUES(?1, ?2, ?3, ?4, ?5)");
    ok = insert.ok();
    for (std::size_t i = 0; ok && i < rows.size(); ++i) {
      const ResultRow& row = rows[i];
      const std::string classes = nlohmann::json(row.prediction.classes).dump();
      const std::string probabilities = nlohmann::json(row.prediction.probabilities).dump();
      sqlite3_reset(insert.get());
      sqlite3_bind_int(insert.get(), 1, row.input);
      sqlite3_bind_int(insert.get(), 2, row.environment);
      sqlite3_bind_text(insert.get(), 3, classes.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(insert.get(), 4, probabilities.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(insert.get(), 5, row.error.c_str(), -1, SQLITE_TRANSIENT);
      ok = sqlite3_step(insert.get()) == SQLITE_DONE;
    }
  }
  if (!ok) {
    Status error = sql_error(db, db_->path, "writing results");
    exec(db, db_->path, "ROLLBACK");
    return error;
  }
  return exec(db, db_->path, "COMMIT");
}

Status ResultsStore::merge_from(const std::string& other_path) {
  auto other = ResultsStore::open(other_path);
  if (!other) return other.status();
  const std::string mine = stored_fingerprint(db_->db);
  const std::string theirs = stored_fingerprint((*other)->db_->db);
  if (theirs.empty()) return invalid_argument("results store '" + other_path + "' holds no run");
  if (!mine.empty() && mine != theirs) {
    return invalid_argument("results store '" + other_path + "' is a shard of another run");
  }
  if (mine.empty()) {
    auto environments = (*other)->environments();
    auto inputs = (*other)->inputs();
    if (!environments) return environments.status();
    if (!inputs) return inputs.status();
    if (Status s = begin(theirs, *environments, *inputs, stored_class_count((*other)->db_->db)); !s.is_ok()) return s;
  }
  const std::string attach = "ATTACH DATABASE '" + other_path + "' AS shard";
  if (other_path.find('\'') != std::string::npos) return invalid_argument("shard path may not contain a quote");
  if (Status s = exec(db_->db, db_->path, attach.c_str()); !s.is_ok()) return s;
  Status copied = exec(db_->db, db_->path, "INSERT OR IGNORE INTO results SELECT * FROM shard.results");
  exec(db_->db, db_->path, "DETACH DATABASE shard");
  return copied;
}

Expected<std::vector<StoredEnvironment>> ResultsStore::environments() const {
  Statement s(db_->db, "SELECT name, spec FROM environments ORDER BY id");
  if (!s.ok()) return sql_error(db_->db, db_->path, "reading environments");
  std::vector<StoredEnvironment> out;
  while (sqlite3_step(s.get()) == SQLITE_ROW) out.push_back({text_column(s.get(), 0), text_column(s.get(), 1)});
  return out;
}

Expected<std::vector<StoredInput>> ResultsStore::inputs() const {
  Statement s(db_->db, "SELECT name, label FROM inputs ORDER BY id");
  if (!s.ok()) return sql_error(db_->db, db_->path, "reading inputs");
  std::vector<StoredInput> out;
  while (sqlite3_step(s.get()) == SQLITE_ROW) out.push_back({text_column(s.get(), 0), sqlite3_column_int(s.get(), 1)});
  return out;
}

Expected<std::vector<ResultRow>> ResultsStore::failures() const {
  Statement s(db_->db, "SELECT input, environment, error FROM results WHERE error != '' ORDER BY input, environment");
  if (!s.ok()) return sql_error(db_->db, db_->path, "reading failures");
  std::vector<ResultRow> out;
  while (sqlite3_step(s.get()) == SQLITE_ROW) {
    ResultRow row;
    row.input = sqlite3_column_int(s.get(), 0);
    row.environment = sqlite3_column_int(s.get(), 1);
    row.error = text_column(s.get(), 2);
    out.push_back(std::move(row));
  }
  return out;
}

Expected<PredictionTable> ResultsStore::table() const {
  const int class_count = stored_class_count(db_->db);
  auto environments = this->environments();
  auto inputs = this->inputs();
  if (!environments) return environments.status();
  if (!inputs) return inputs.status();
  PredictionTable table;
  for (const auto& e : *environments) table.environments.push_back(e.name);
  for (const auto& i : *inputs) table.labels.push_back(i.label);
  table.predictions.assign(inputs->size(), std::vector<Prediction>(environments->size()));
  Statement s(db_->db, "SELECT input, environment, classes, probabilities FROM results WHERE error = ''");
  if (!s.ok()) return sql_error(db_->db, db_->path, "reading results");
  return capture([&] {
    while (sqlite3_step(s.get()) == SQLITE_ROW) {
      const int input = sqlite3_column_int(s.get(), 0);
      const int environment = sqlite3_column_int(s.get(), 1);
      if (input < 0 || input >= static_cast<int>(inputs->size()) || environment < 0 ||
          environment >= static_cast<int>(environments->size())) {
        throw Error(corrupt("results store '" + db_->path + "': row for unknown input/environment"));
      }
      Prediction& p = table.predictions[input][environment];
      const std::string where = "results store '" + db_->path + "': input " + std::to_string(input) + ", environment " +
                                std::to_string(environment) + ": ";
      const auto classes = nlohmann::json::parse(text_column(s.get(), 2), nullptr, false);
      const auto probabilities = nlohmann::json::parse(text_column(s.get(), 3), nullptr, false);
      if (!classes.is_array() || !probabilities.is_array() || classes.size() != probabilities.size()) {
        throw Error(corrupt(where + "classes and probabilities are not two JSON arrays of one length"));
      }
      for (const auto& c : classes) {
        if (!c.is_number_integer() || c.get<std::int64_t>() < 0 || (class_count > 0 && c.get<std::int64_t>() >= class_count)) {
          throw Error(corrupt(where + "class " + c.dump() + " is not a class id in [0, " +
                              (class_count > 0 ? std::to_string(class_count) : std::string("inf")) + ")"));
        }
        p.classes.push_back(c.get<int>());
      }
      for (const auto& q : probabilities) {
        if (!q.is_number() || !(q.get<double>() >= 0 && q.get<double>() <= 1)) {
          throw Error(corrupt(where + "probability " + q.dump() + " is not a number in [0, 1]"));
        }
        p.probabilities.push_back(q.get<float>());
      }
    }
    return table;
  });
}

}  // namespace edgefleet
