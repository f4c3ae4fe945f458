#include "chanpool/transport/diagnostics.hpp"

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

namespace chanpool::transport {

namespace {
std::mutex handler_mu;
std::shared_ptr<const diagnostic_handler> current_handler;  // (handler_mu)
}  // namespace

void set_diagnostic_handler(diagnostic_handler handler) {
  auto next = handler ? std::make_shared<const diagnostic_handler>(std::move(handler)) : nullptr;
  std::lock_guard lock(handler_mu);
  current_handler = std::move(next);
}

void write_diagnostics_to_stderr() {
  set_diagnostic_handler([](std::string_view line) {
    std::string text(line);
    text.push_back('\n');
    std::fwrite(text.data(), 1, text.size(), stderr);
  });
}

void diagnose(std::string_view line) {
  std::shared_ptr<const diagnostic_handler> h;
  {
    std::lock_guard lock(handler_mu);
    h = current_handler;
  }
  // Called outside the lock: a handler that sets another handler does not deadlock.
  if (h) (*h)(line);
}

}  // namespace chanpool::transport
