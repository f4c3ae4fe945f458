// Maps a registered task over two virtual nodes with the installed Pool: proves its headers
// (and cereal's), the library and its hwloc and libfabric dependencies.
#include <chanpool/pool/pool.hpp>

#include <cstdio>
#include <string>
#include <vector>

std::string greet(int i) { return "hello " + std::to_string(i); }
CHANPOOL_TASK(greet);

int main() {
  namespace pl = chanpool::pool;
  pl::pool p({.nodes = 2, .workers_per_node = 1});
  const std::vector<std::string> r = p.map(greet, std::vector<int>{1, 2, 3});
  if (r != std::vector<std::string>{"hello 1", "hello 2", "hello 3"}) {
    std::fprintf(stderr, "pool consumer: wrong results\n");
    return 1;
  }
  std::printf("pool consumer: ok\n");
  return 0;
}
