// Diagnostics: what the transport has to say that is not the result of a call (a peer found
// unreachable, this node evicted, why a start failed). The library never writes to the streams
// of the process it runs in: lines go to the handler set here, and nowhere when none is set.
// The tools set write_diagnostics_to_stderr(); so do the agent processes a virtual cluster forks.
#pragma once

#include <functional>
#include <string_view>

namespace chanpool::transport {

using diagnostic_handler = std::function<void(std::string_view line)>;

// Replaces the handler (an empty one silences). Any thread; the handler may be called from the
// agent's threads, one line at a time, and must not block for long.
void set_diagnostic_handler(diagnostic_handler handler);
// The handler the tools use: each line to stderr, with a newline.
void write_diagnostics_to_stderr();
// Passes one line to the handler (library code; any thread).
void diagnose(std::string_view line);

}  // namespace chanpool::transport
