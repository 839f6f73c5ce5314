#include "core/secret.h"

#include <cstdio>
#include <cstdlib>
#include <random>

namespace edgefleet {

std::string random_secret() {
  std::random_device device;  // /dev/urandom
  std::string key;
  for (int i = 0; i < 4; ++i) {
    char part[9];
    std::snprintf(part, sizeof part, "%08x", static_cast<unsigned>(device()));
    key += part;
  }
  return key;
}

bool same_secret(const std::string& a, const std::string& b) {
  // No early exit: the time taken does not tell how much of a guess was right.
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string token_from_environment() {
  const char* token = std::getenv(kTokenVariable);
  return token ? token : "";
}

}  // namespace edgefleet
