// Internal: bearer tokens and keys — made from the system's random source, compared in
// constant time, and read from the environment rather than the command line (where every
// user of the machine sees them in ps).
#pragma once

#include <string>

namespace edgefleet {

// The variable a token is read from, for `serve` and the peer coordinator and its devices.
constexpr const char* kTokenVariable = "EDGEFLEET_TOKEN";

std::string random_secret();  // 128 random bits as 32 hex digits
bool same_secret(const std::string& a, const std::string& b);
std::string token_from_environment();  // $EDGEFLEET_TOKEN, or ""

}  // namespace edgefleet
