// The Pool's diagnostics (a lost node, a worker that cannot start): one printf-formatted line to
// the transport's diagnostic handler (chanpool/transport/diagnostics.hpp), never to the streams
// of the user's process. The tools send them to stderr.
#pragma once

#include <cstdarg>
#include <cstdio>

#include "chanpool/transport/diagnostics.hpp"

namespace chanpool::pool {

[[gnu::format(printf, 1, 2)]] inline void report(const char* format, ...) {
  char line[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof line, format, args);
  va_end(args);
  transport::diagnose(line);
}

}  // namespace chanpool::pool
