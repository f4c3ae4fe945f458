#include "chanpool/transport/mpi_bootstrap.hpp"

#include <cstring>
#include <vector>

#include "chanpool/transport/client.hpp"

namespace chanpool::transport {

result<std::unique_ptr<agent>> start_agent_mpi(MPI_Comm comm, const std::string& job, const agent_config& given) {
  int rank = 0, size = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  // Loopback (agent_config's default, right for virtual nodes) cannot reach other hosts: when
  // the ranks span hosts, let the provider pick this host's interface (FI_TCP_IFACE, or a
  // listen_address set by the caller, chooses another).
  agent_config config = given;
  // The agent runs in the user's rank, which a launcher may kill: a keeper removes the node's
  // segments then (agent_config::node_keeper).
  config.node_keeper = true;
  MPI_Comm host;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &host);
  int host_size = 0;
  MPI_Comm_size(host, &host_size);
  MPI_Comm_free(&host);
  if (host_size < size && config.listen_address == agent_config{}.listen_address) config.listen_address.clear();
  auto created = agent::create(static_cast<std::uint32_t>(rank), static_cast<std::uint32_t>(size),
                               virtual_node_job(job, static_cast<std::uint32_t>(rank)), config);
  // Every rank must take part in the collectives even if its agent failed: a zero-length
  // address tells the others to give up too.
  constexpr int max_address = 256;
  std::vector<unsigned char> mine(max_address + 4, 0), all(static_cast<std::size_t>(size) * (max_address + 4));
  if (created) {
    const auto& addr = (*created)->address();
    const auto len = static_cast<std::uint32_t>(addr.size());
    std::memcpy(mine.data(), &len, 4);
    std::memcpy(mine.data() + 4, addr.data(), addr.size());
  }
  MPI_Allgather(mine.data(), max_address + 4, MPI_UNSIGNED_CHAR, all.data(), max_address + 4, MPI_UNSIGNED_CHAR, comm);
  std::uint64_t key = rank == 0 ? make_job_key() : 0;
  MPI_Bcast(&key, 1, MPI_UINT64_T, 0, comm);

  std::vector<std::vector<std::byte>> peers(static_cast<std::size_t>(size));
  bool everyone = true;
  for (int r = 0; r < size; ++r) {
    std::uint32_t len = 0;
    std::memcpy(&len, all.data() + static_cast<std::size_t>(r) * (max_address + 4), 4);
    if (len == 0 || len > max_address) everyone = false;
    const auto* p = reinterpret_cast<const std::byte*>(all.data() + static_cast<std::size_t>(r) * (max_address + 4) + 4);
    peers[static_cast<std::size_t>(r)].assign(p, p + len);
  }
  if (!created) return created.error();
  if (!everyone) return errc::peer_unreachable;
  if (auto ec = (*created)->connect(peers, key); ec) return ec;
  return std::move(*created);
}

}  // namespace chanpool::transport
