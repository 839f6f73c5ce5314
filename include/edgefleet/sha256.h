// SHA-256 of files and byte strings (OpenSSL), as lowercase hex. Thread-safe.
#pragma once

#include <string>

#include "edgefleet/status.h"

namespace edgefleet {

std::string sha256_hex(const void* data, std::size_t size);
// Fails with not_found / io_error when the file cannot be read.
Expected<std::string> sha256_file(const std::string& path);

}  // namespace edgefleet
