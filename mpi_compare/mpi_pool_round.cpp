// mpi_pool_round: the round-based MPI pool of Dragon's dragon_pool_vs_mpi.py benchmark, in C++.
// Rank 0 (the root) sends one item to every worker, serially with MPI_Send, then receives one
// reply per worker with MPI_Recv(MPI_ANY_SOURCE); items_per_worker such rounds make the map.
// chanpool's Pool is compared against this; mpi_pool_dynamic is the other baseline.
//
//   mpirun -np 33 mpi_pool_round --imbalance_factor 8 [--json]
#include "mpi_pool.hpp"

namespace {

namespace pool = chanpool::mpi_compare::pool;

constexpr const char* summary = "round-based MPI pool: the map baseline of Dragon's Pool-versus-MPI benchmark";

// The manual's DESCRIPTION starts with this; mpi_pool.hpp adds what both pools share.
constexpr const char* description =
    "A map of W * N work items over W = P - 1 workers (ranks 1..P-1), scheduled in rounds by\n"
    "rank 0, the root, as Dragon's benchmark's MPI pool does: in round r (0 <= r < N) the root\n"
    "sends item r * W + (w - 1) of the list to worker rank w, for w = 1..W in turn (MPI_Send),\n"
    "then receives W replies with MPI_Recv(MPI_ANY_SOURCE) before the next round. A round lasts\n"
    "as long as its longest item: with imbalanced items, workers idle.\n";

void schedule(pool::root_channel& root) {
  const auto workers = static_cast<std::size_t>(root.workers());
  for (std::size_t first = 0; first < root.items(); first += workers) {
    for (std::size_t w = 0; w < workers; ++w) root.send(first + w, static_cast<int>(w) + 1);
    for (std::size_t w = 0; w < workers; ++w) root.receive();
  }
}

}  // namespace

int main(int argc, char** argv) {
  return pool::pool_main(argc, argv, {"mpi_pool_round", summary, description, "round-based schedule", schedule});
}
