#include "chanpool/version.hpp"

namespace chanpool {

std::string_view version() noexcept { return CHANPOOL_VERSION_STRING; }

}  // namespace chanpool
