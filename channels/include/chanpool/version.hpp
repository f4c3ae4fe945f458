// The version of chanpool: the macros of the headers compiled against (chanpool/version.h) and
// version(), the library linked in. They differ only when a program was built against other
// headers than the library it runs with.
#pragma once

#include <string_view>

#include "chanpool/version.h"

namespace chanpool {

// "MAJOR.MINOR.PATCH" of the linked library, e.g. "0.1.0" (CMake's project(VERSION)).
std::string_view version() noexcept;

}  // namespace chanpool
