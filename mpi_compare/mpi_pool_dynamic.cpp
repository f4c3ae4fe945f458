// mpi_pool_dynamic: the classic MPI master/worker. Rank 0 (the root) hands the first item to
// every worker, then, whenever a reply arrives (MPI_Recv(MPI_ANY_SOURCE)), sends that worker
// the next item in list order, until all are done. Dynamic like chanpool's Pool:
// against it the Pool can win only by lower overheads, not by better scheduling.
//
//   mpirun -np 33 mpi_pool_dynamic --imbalance_factor 8 [--json]
#include "mpi_pool.hpp"

namespace {

namespace pool = chanpool::mpi_compare::pool;

constexpr const char* summary = "master/worker MPI pool: each idle worker gets the next item";

// The manual's DESCRIPTION starts with this; mpi_pool.hpp adds what both pools share.
constexpr const char* description =
    "A map of W * N work items over W = P - 1 workers (ranks 1..P-1), scheduled dynamically by\n"
    "rank 0, the root: it sends items 0..W-1 of the list to worker ranks 1..W (MPI_Send, in\n"
    "turn), then receives replies with MPI_Recv(MPI_ANY_SOURCE) and answers each with the next\n"
    "unsent item in list order, sent to the worker that replied, until every item's reply is\n"
    "in. No worker idles while items remain: the zero-overhead runtime is that of a greedy list\n"
    "schedule, which mpi_pool_round reaches only when all items are equal.\n";

void schedule(pool::root_channel& root) {
  const auto workers = static_cast<std::size_t>(root.workers());
  std::size_t next = 0;
  for (; next < workers; ++next) root.send(next, static_cast<int>(next) + 1);  // items >= workers
  for (std::size_t replies = 0; replies < root.items(); ++replies) {
    const int worker = root.receive();
    if (next < root.items()) root.send(next++, worker);
  }
}

}  // namespace

int main(int argc, char** argv) {
  return pool::pool_main(argc, argv, {"mpi_pool_dynamic", summary, description, "dynamic schedule (master/worker)", schedule});
}
