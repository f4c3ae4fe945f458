// The C API of the MPI bootstrap (chanpool/transport_mpi.h), in libchanpool_c_mpi.so.
#include "chanpool/transport_mpi.h"

#include <memory>
#include <string>

#include "c_api_support.hpp"
#include "chanpool/transport/mpi_bootstrap.hpp"

struct chanpool_agent {
  std::unique_ptr<chanpool::transport::agent> agent;
};

extern "C" {

int chanpool_agent_start_mpi(MPI_Comm comm, const char* job, const char* provider, chanpool_agent_t** out) {
  if (out) *out = nullptr;
  if (!out || !job || !*job) return CHANPOOL_INVALID;
  return chanpool::capi::guarded([&]() -> int {
    chanpool::transport::agent_config config;
    if (provider) config.provider = provider;
    auto handle = std::make_unique<chanpool_agent>();
    auto started = chanpool::transport::start_agent_mpi(comm, job, config);
    if (!started) return chanpool::capi::code(started.error());
    handle->agent = std::move(*started);
    *out = handle.release();
    return CHANPOOL_OK;
  });
}

void chanpool_agent_stop(chanpool_agent_t* agent) {
  chanpool::capi::guarded([&]() -> int {
    if (agent) agent->agent->stop();
    delete agent;
    return CHANPOOL_OK;
  });
}

uint32_t chanpool_agent_node(const chanpool_agent_t* agent) { return agent ? agent->agent->node() : 0; }

}  // extern "C"
