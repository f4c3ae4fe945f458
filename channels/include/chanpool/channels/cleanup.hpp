// Finds and removes chanpool segments whose processes are all gone.
// Both functions are threadsafe (they only read /dev/shm and map segments read-only); removal
// races harmlessly with another cleanup (a name already gone is not an error).
#pragma once

#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace chanpool::channels {

struct segment_record {
  std::string shm_name;      // e.g. "chanpool.1000.default.results" (as under /dev/shm)
  std::string job;
  std::string channel_name;
  std::uint64_t bytes = 0;
  std::uint32_t creator_pid = 0;
  std::uint32_t live_processes = 0;  // registered processes still alive (creator included)
  bool stale = false;                // no live process and not being created right now
  std::string problem;               // non-empty when the header could not be validated
};

struct cleanup_options {
  std::string job;        // only this job; empty = every job of this user
  bool dry_run = false;   // report, remove nothing
};

// Lists this user's segments (optionally one job's), judging each for staleness.
std::vector<segment_record> list_segments(const std::string& job = {});

// Removes stale segments (and ones with a corrupted header whose creator is dead). Returns the
// records of what was (or, with dry_run, would be) removed.
std::vector<segment_record> cleanup_stale(const cleanup_options& options, std::error_code& error);

}  // namespace chanpool::channels
