// mpi_pool_round: the seed's round-based MPI pool (Dragon's dragon_pool_vs_mpi.py), in C++.
// Rank 0 (the root) sends one item to every worker, serially with MPI_Send, then receives one
// reply per worker with MPI_Recv(MPI_ANY_SOURCE); items_per_worker such rounds make the map.
// chanpool's Pool (issue 4) is compared against this; mpi_pool_dynamic is the other baseline.
//
//   mpirun -np 33 mpi_pool_round --imbalance_factor 8 [--json]
#include "mpi_pool.hpp"

namespace {

namespace pool = chanpool::mpi_compare::pool;

constexpr const char* description =
    "NAME\n"
    "  mpi_pool_round - round-based MPI pool: the map baseline of Dragon's Pool-versus-MPI benchmark\n"
    "\n"
    "SYNOPSIS\n"
    "  mpirun -np P mpi_pool_round [--imbalance_factor K] [--items_per_worker N] [--min_time S]\n"
    "                              [--seed SEED] [--num_iters I] [--json]\n"
    "\n"
    "DESCRIPTION\n"
    "  A map of W * N work items over W = P - 1 workers (ranks 1..P-1), scheduled in rounds by\n"
    "  rank 0, the root, as the seed benchmark's MPI pool does: in round r (0 <= r < N) the root\n"
    "  sends item r * W + (w - 1) of the list to worker rank w, for w = 1..W in turn (MPI_Send),\n"
    "  then receives W replies with MPI_Recv(MPI_ANY_SOURCE) before the next round. A round lasts\n"
    "  as long as its longest item: with imbalanced items, workers idle.\n"
    "\n"
    "  A work item is a sleep (std::this_thread::sleep_for; the worker does not spin, though Open\n"
    "  MPI ranks busy-poll while they wait in MPI_Recv, which on an oversubscribed machine\n"
    "  competes with everything else). The durations come from one seeded list that\n"
    "  mpi_pool_dynamic and chanpool's Pool generate identically: item i is\n"
    "  min_time + u_i * ((K - 1) * min_time), u_i = (x_i >> 11) * 2^-53, x_i the i-th output of\n"
    "  std::mt19937_64(SEED): uniform in [min_time, K * min_time). Each reply carries the item's\n"
    "  index; the root checks that every item was done exactly once, by the rank it was sent to.\n"
    "\n"
    "  runtime = at the root, from the MPI_Barrier before the first send to the last reply. With\n"
    "  --num_iters I the whole map runs I times (same list), each timed from its own barrier.\n"
    "  P >= 2. Only rank 0 prints.\n";

void schedule(pool::root_channel& root) {
  const auto workers = static_cast<std::size_t>(root.workers());
  for (std::size_t first = 0; first < root.items(); first += workers) {
    for (std::size_t w = 0; w < workers; ++w) root.send(first + w, static_cast<int>(w) + 1);
    for (std::size_t w = 0; w < workers; ++w) root.receive();
  }
}

}  // namespace

int main(int argc, char** argv) {
  return pool::pool_main(argc, argv, {"mpi_pool_round", description, "round-based schedule", schedule});
}
