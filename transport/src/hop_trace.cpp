// The hop trace: the file the agent's per-thread logs are written to, and its reader.
#include <cerrno>
#include <cstdio>
#include <memory>

#include "hop_log.hpp"

namespace chanpool::transport {
namespace detail {
namespace {
struct file_closer {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
}  // namespace

std::error_code write_hop_trace(const std::string& path, const std::vector<const hop_log*>& logs) {
  std::unique_ptr<std::FILE, file_closer> f(std::fopen(path.c_str(), "wb"));
  if (!f) return {errno, std::system_category()};
  for (const hop_log* log : logs) {
    const auto& r = log->records();
    if (!r.empty() && std::fwrite(r.data(), sizeof(hop_record), r.size(), f.get()) != r.size())
      return {errno ? errno : EIO, std::system_category()};
  }
  if (std::fflush(f.get()) != 0) return {errno, std::system_category()};
  return {};
}

}  // namespace detail

result<std::vector<hop_record>> read_hop_trace(const std::string& path) {
  std::unique_ptr<std::FILE, detail::file_closer> f(std::fopen(path.c_str(), "rb"));
  if (!f) return std::error_code(errno, std::system_category());
  std::vector<hop_record> out;
  hop_record r;
  std::size_t got = 0;
  while ((got = std::fread(&r, 1, sizeof r, f.get())) == sizeof r) out.push_back(r);
  if (got != 0) return errc::corrupted;  // a partial record: not a trace this version wrote
  if (std::ferror(f.get())) return std::error_code(EIO, std::system_category());
  return out;
}

}  // namespace chanpool::transport
