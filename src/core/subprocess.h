// Internal: running an external program (a raw developer) to completion with a time limit.
#pragma once

#include <string>
#include <vector>

#include "edgefleet/status.h"

namespace edgefleet {

// Runs argv[0] (looked up on PATH) with stdout written to `stdout_path` and stderr to
// `stderr_path` (empty = discarded), in the working directory `cwd`. Fails with io_error when
// it cannot start, runs past `timeout_seconds` (it is killed) or exits non-zero; the message
// names the program, the exit status and the last line it wrote to stderr.
Status run_program(const std::vector<std::string>& argv, double timeout_seconds, const std::string& stdout_path = "",
                   const std::string& cwd = "", const std::string& stderr_path = "");

// The last non-empty line of a text file (a program's log), "" when there is none.
std::string last_line_of(const std::string& path);

// Whether `program` is an executable on PATH.
bool program_on_path(const std::string& program);

}  // namespace edgefleet
