// Where workers run: the core count and pinning, from hwloc.
#pragma once

#include <string>

namespace chanpool::pool::detail {

// Physical cores of this host (at least 1).
unsigned physical_cores();

// Binds the calling process to physical core `core` (mod the core count), on its first PU.
// Returns an empty string on success, else why it could not.
std::string pin_to_core(unsigned core);

}  // namespace chanpool::pool::detail
