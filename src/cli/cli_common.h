// Internal: what every subcommand shares — registration, error exit, table printing.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "edgefleet/status.h"

namespace edgefleet::cli {

// Exit codes: 0 success, 1 bad input or failed run, 2 usage error (CLI11's own), 75 a
// failure worth retrying as is (I/O, a busy resource, work still missing; sysexits' EX_TEMPFAIL),
// for batch schedulers that requeue.
inline constexpr int kExitFailure = 1;
inline constexpr int kExitRetryable = 75;

// Prints "edgefleet: <status>" on stderr and returns kExitFailure.
int fail(const Status& status);
// The same, but kExitRetryable for io_error and unavailable (long runs under a scheduler).
int fail_retryable_or_not(const Status& status);

// A plain text table with right-aligned numeric columns.
std::string format_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// The same as a Markdown table: first and last columns left-aligned, the others right.
std::string format_markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// SIGINT and SIGTERM blocked in this thread and every thread it starts afterwards (call it
// before a server starts its threads), for wait_for_stop_signal() to take.
void block_stop_signals();
// Returns when SIGINT or SIGTERM arrives; needs block_stop_signals() first.
void wait_for_stop_signal();

std::string fixed(double value, int decimals);
std::string human_count(double value);  // 1.2M, 340k

// Each subcommand adds itself to the app and returns the function to run when chosen.
using Runner = std::function<int()>;
Runner add_zoo_command(CLI::App& app);
Runner add_eval_command(CLI::App& app);
Runner add_fleet_command(CLI::App& app);
Runner add_simulate_command(CLI::App& app);
Runner add_profile_command(CLI::App& app);
Runner add_pipeline_command(CLI::App& app);
Runner add_stability_command(CLI::App& app);
Runner add_harden_command(CLI::App& app);
Runner add_serve_command(CLI::App& app);
Runner add_repository_command(CLI::App& app);
Runner add_infer_command(CLI::App& app);
Runner add_port_command(CLI::App& app);
Runner add_prune_command(CLI::App& app);
Runner add_export_command(CLI::App& app);
Runner add_device_command(CLI::App& app);
Runner add_peers_command(CLI::App& app);
Runner add_branches_command(CLI::App& app);

}  // namespace edgefleet::cli
