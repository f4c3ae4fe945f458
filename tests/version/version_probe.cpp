// Prints the version the static library reports through both of its APIs, for
// check_versions.py: "chanpool::version() X.Y.Z" and "chanpool_version() X.Y.Z".
#include <cstdio>
#include <string>

#include "chanpool/channels.h"
#include "chanpool/version.hpp"

int main() {
  std::printf("chanpool::version() %s\n", std::string(chanpool::version()).c_str());
  std::printf("chanpool_version() %s\n", chanpool_version());
  return 0;
}
