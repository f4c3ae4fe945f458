// The Pool's up-front check that N nodes x W workers fit this host (transport/limits.hpp).
#pragma once

#include <cstdint>
#include <string>

#include "chanpool/pool/pool.hpp"
#include "chanpool/transport/limits.hpp"

namespace chanpool::pool::detail {

// What a Pool of `nodes` x `workers_per_node` started with `options` asks of the host.
transport::resource_need pool_need(std::uint32_t nodes, std::uint32_t workers_per_node, const pool_options& options);

// Throws std::system_error (the error of transport::exceeded()) when the Pool does not fit,
// saying what it needs, what the host allows and the largest sizes that fit. Nothing has been
// started when it throws.
void check_pool_fits(std::uint32_t nodes, std::uint32_t workers_per_node, const pool_options& options);

}  // namespace chanpool::pool::detail
