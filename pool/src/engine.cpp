// The orchestrator's engine. See engine.hpp, and docs/pool.md for the protocol.
#include "engine.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "chanpool/channels/cleanup.hpp"
#include "chanpool/transport/fabric.hpp"
#include "node.hpp"
#include "placement.hpp"
#include "preflight.hpp"
#include "process_watch.hpp"
#include "wire_decode.hpp"
#include "report.hpp"

namespace chanpool::pool::detail {
namespace {

namespace ch = chanpool::channels;
namespace tp = chanpool::transport;
using steady = std::chrono::steady_clock;

// Chunks are also cut by size, so one chunk's message stays well inside a channel's heap.
constexpr std::size_t max_chunk_bytes = 1 << 20;
// Prefetch aims to keep this much of a job's work queued per worker, so a short task never waits
// for the orchestrator's round trip.
constexpr double prefetch_horizon_s = 0.002;
constexpr auto liveness_period = std::chrono::milliseconds(100);

std::atomic<std::uint32_t> pools_started{0};

constexpr const char* warm_up_task_name = "chanpool::pool::warm_up";
void warm_up_noop() {}
CHANPOOL_TASK_NAMED(warm_up_noop, warm_up_task_name);

[[noreturn]] void throw_start_error(const std::string& what, std::error_code ec = {}) {
  if (ec) throw std::system_error(ec, "chanpool pool: " + what);
  throw std::runtime_error("chanpool pool: " + what);
}

std::string items_text(std::uint64_t first, std::uint32_t count) {
  if (count <= 1) return "item " + std::to_string(first);
  return "items " + std::to_string(first) + ".." + std::to_string(first + count - 1);
}

// CHANPOOL_POOL_TRACE=1 prints the steps of a pool's start-up and when each ended.
void trace_start(const char* what, steady::time_point t0) {
  static const bool on = std::getenv("CHANPOOL_POOL_TRACE") != nullptr;
  if (on) report("pool start: %-28s %.3f s", what, std::chrono::duration<double>(steady::now() - t0).count());
}

}  // namespace

engine::engine(const pool_options& options) : options_(options) {
  try {
    start();
  } catch (...) {
    stop_processes(true);
    throw;
  }
}

engine::engine(const pool_options& options, launched_nodes&& launched) : options_(options) {
  launched_ = true;
  agent_ = std::move(launched.agent);
  try {
    start_launched(std::move(launched));
  } catch (...) {
    stop_processes(true);
    throw;
  }
}

engine::~engine() {
  if (!joined_) terminate();
}

void set_provider_defaults(const pool_options& options) {
  tp::set_rxm_defaults(options.rxm_buffer_bytes, options.rxm_queue_depth);
}

std::uint32_t tasks_channel_capacity(std::uint32_t workers, const pool_options& options) {
  const std::uint32_t want = 4 * workers * (1 + options.max_prefetch_per_worker) + 64;
  std::uint32_t cap = 64;
  while (cap < want && cap < (1u << 20)) cap <<= 1;
  return cap;
}

node_plan make_node_plan(const pool_options& options, const std::string& job, std::uint32_t node, std::uint32_t workers,
                         bool pin, bool spin, std::uint32_t first_core) {
  node_plan plan;
  plan.node_job = tp::virtual_node_job(job, node);
  plan.node = node;
  plan.workers = workers;
  plan.tasks_capacity = tasks_channel_capacity(workers, options);
  plan.max_item_bytes = options.max_item_bytes;
  plan.maxtasksperchild = options.maxtasksperchild;
  plan.pin = pin;
  plan.spin = spin;
  plan.first_core = first_core;
  plan.initializer_task = options.initializer_task;
  plan.initializer_args = options.initializer_args;
  return plan;
}

pid_t fork_supervisor(const node_plan& plan) {
  std::fflush(nullptr);
  const int parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) run_supervisor(plan, parent);
  return pid;
}

void engine::create_results_channel() {
  ch::channel_config results_cfg;
  results_cfg.capacity = 16384;
  results_cfg.slot_bytes = 256;
  results_cfg.heap_bytes = std::max<std::uint64_t>(256u << 20, 8ull * options_.max_item_bytes);
  auto results = ch::channel::create(results_channel_name, results_cfg, {.job = tp::virtual_node_job(info_.job, 0)});
  if (!results) throw_start_error("cannot create the results channel", results.error());
  results_ = std::move(*results);
  if (info_.oversubscribed && options_.no_spin_when_oversubscribed) results_.set_wait({.mode = ch::wait_mode::idle});
}

// Nodes started by a launcher (mpirun/srun): this process is node 0 and runs its agent; every
// node's supervisor is already forked (ours is a child of this process).
void engine::start_launched(launched_nodes&& launched) {
  const auto t0 = launched.started;
  info_.nodes = launched.node_count;
  info_.job = launched.job;
  info_.pinned = launched.pinned;
  info_.oversubscribed = launched.oversubscribed;
  nodes_.resize(info_.nodes);
  for (std::uint32_t k = 0; k < info_.nodes; ++k) {
    nodes_[k].workers = launched.workers.at(k);
    info_.workers += nodes_[k].workers;
  }
  info_.workers_per_node = nodes_[0].workers;
  nodes_[0].supervisor = launched.own_supervisor;
  plan_dispatch();
  create_results_channel();
  info_.fabric = agent_->fabric_info().summary();
  for (std::uint32_t k = 0; k < info_.nodes; ++k) {
    info_.agent_pids.push_back(k == 0 ? static_cast<int>(::getpid()) : 0);
    info_.supervisor_pids.push_back(k == 0 ? nodes_[0].supervisor : 0);
  }
  finish_start(t0);
}

void engine::start() {
  const auto t0 = steady::now();
  auto trace = [&](const char* what) { trace_start(what, t0); };
  if (options_.nodes == 0) throw std::invalid_argument("chanpool pool: nodes must be at least 1");
  if (options_.max_prefetch_per_worker < options_.prefetch_per_worker)
    options_.max_prefetch_per_worker = options_.prefetch_per_worker;
  const unsigned cores = physical_cores();
  info_.nodes = options_.nodes;
  info_.workers_per_node = options_.workers_per_node != 0 ? options_.workers_per_node
                                                         : std::max(1u, cores / options_.nodes);
  info_.workers = info_.nodes * info_.workers_per_node;
  info_.pinned = options_.pin == pin_policy::always ||
                 (options_.pin == pin_policy::automatic && info_.workers <= cores);
  info_.job = !options_.job.empty() ? options_.job
                                    : "pool" + std::to_string(::getpid()) + "-" + std::to_string(pools_started++);

  check_pool_fits(info_.nodes, info_.workers_per_node, options_);  // before anything starts
  info_.oversubscribed = info_.workers + info_.nodes + 1 > cores;
  if (info_.oversubscribed && options_.no_spin_when_oversubscribed) options_.agent.spin = std::chrono::microseconds(0);
  set_provider_defaults(options_);

  // The results channel first: workers resolve it as soon as they start.
  create_results_channel();

  nodes_.resize(info_.nodes);
  tp::cluster_config cc;
  cc.nodes = info_.nodes;
  cc.job = info_.job;
  cc.agent = options_.agent;
  cc.start_timeout = options_.start_timeout;
  auto cluster = tp::virtual_cluster::start(cc);
  if (!cluster) throw_start_error("cannot start the node agents", cluster.error());
  cluster_ = std::move(*cluster);
  trace("agents up");
  // Then the supervisors: forked before the agents, their workers' polling for an agent that is
  // not up yet slowed the agents' start-up (128 pollers on 2 cores).
  fork_supervisors();
  trace("supervisors forked");
  info_.fabric = cluster_.fabric_summary();
  for (std::uint32_t k = 0; k < info_.nodes; ++k) {
    info_.agent_pids.push_back(cluster_.agent_pid(k));
    info_.supervisor_pids.push_back(nodes_[k].supervisor);
  }

  finish_start(t0);
}

// Both starts end here: attach to node 0's agent, resolve every node's task channel, wait for
// every worker, warm up.
void engine::finish_start(steady::time_point t0) {
  auto trace = [&](const char* what) { trace_start(what, t0); };
  auto c = tp::client::attach(tp::virtual_node_job(info_.job, 0));
  if (!c) throw_start_error("cannot attach to node 0's agent", c.error());
  client_ = std::move(*c);

  const auto deadline = t0 + options_.start_timeout;
  for (std::uint32_t k = 0; k < info_.nodes; ++k) {
    for (;;) {
      auto r = client_.open({k, tasks_channel_name});
      if (r) {
        nodes_[k].tasks = std::move(*r);
        break;
      }
      // not_ready: its supervisor is still writing it (a large one takes a while).
      const bool pending = r.error() == make_error_code(errc::not_found) || r.error() == make_error_code(errc::not_ready);
      if (!pending || steady::now() > deadline)
        throw_start_error("cannot open node " + std::to_string(k) + "'s task channel", r.error());
      if (nodes_[k].supervisor > 0 && process_exited(nodes_[k].supervisor))
        throw_start_error("node " + std::to_string(k) + "'s supervisor exited during start-up (see its message above)");
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }
  trace("task channels resolved");
  wait_for_workers();
  trace("workers ready");
  next_liveness_check_ = steady::now() + liveness_period;
  scheduler_ = std::thread([this] { scheduler_loop(); });
  warm_up();
  trace("warm-up done");
  info_.startup_seconds = std::chrono::duration<double>(steady::now() - t0).count();
}

// One no-op item per worker through the whole path (dispatch, a worker's receive and invoke,
// the result's return), so the first map does not pay for first-touch page faults and cold
// caches in every process. Part of the start-up time.
void engine::warm_up() {
  const task_entry* noop = find_task(warm_up_task_name);
  if (noop == nullptr) return;
  submission s;
  s.task = noop;
  s.chunksize = 1;
  for (std::uint32_t i = 0; i < info_.workers; ++i) s.ends.push_back(0);
  auto j = submit(std::move(s));
  if (!j->wait_ready(steady::now() + options_.start_timeout))
    throw_start_error("the warm-up round did not complete within the start timeout");
  j->throw_first_failure();
}

void engine::fork_supervisors() {
  for (std::uint32_t k = 0; k < info_.nodes; ++k) {
    const node_plan plan = make_node_plan(options_, info_.job, k, info_.workers_per_node, info_.pinned,
                                          !(info_.oversubscribed && options_.no_spin_when_oversubscribed),
                                          k * info_.workers_per_node);
    const pid_t pid = fork_supervisor(plan);
    if (pid < 0) throw_start_error("cannot fork node " + std::to_string(k) + "'s supervisor",
                                   std::error_code(errno, std::generic_category()));
    nodes_[k].supervisor = pid;
    nodes_[k].workers = info_.workers_per_node;
  }
  plan_dispatch();
}

void engine::plan_dispatch() {
  dispatch_ = dispatcher({.prefetch_per_worker = options_.prefetch_per_worker,
                          .max_prefetch_per_worker = options_.max_prefetch_per_worker,
                          .horizon_s = prefetch_horizon_s});
  for (const node_record& n : nodes_) dispatch_.add_node(n.workers);
}

void engine::wait_for_workers() {
  const auto deadline = steady::now() + options_.start_timeout;
  std::set<std::pair<std::uint32_t, std::uint32_t>> ready;
  std::vector<std::byte> buffer;
  while (ready.size() < info_.workers) {
    if (steady::now() > deadline)
      throw_start_error(std::to_string(ready.size()) + " of " + std::to_string(info_.workers) +
                        " workers became ready within the start timeout");
    const status st = results_.recv(buffer, std::chrono::milliseconds(50));
    if (st == status::timeout) {
      for (std::uint32_t k = 0; k < info_.nodes; ++k)
        if (nodes_[k].supervisor > 0 && process_exited(nodes_[k].supervisor))
          throw_start_error("node " + std::to_string(k) + "'s supervisor exited during start-up (see its message above)");
      continue;
    }
    if (st != status::ok) throw_start_error("the results channel failed: " + std::string(to_string(st)));
    const std::string_view message(reinterpret_cast<const char*>(buffer.data()), buffer.size());
    const auto h = wire::read_header<wire::result_header>(message);
    if (!h || h->magic != wire::result_magic || h->version != wire::version) continue;
    if (h->kind == wire::result_kind::worker_ready) {
      if (h->flags != 0)
        throw_start_error("worker " + std::to_string(h->worker) + " on node " + std::to_string(h->node) + ": " +
                          std::string(message.substr(sizeof *h)));
      ready.emplace(h->node, h->worker);
    } else if (h->kind == wire::result_kind::worker_lost) {
      std::lock_guard lock(counters_mutex_);
      ++counters_.workers_lost;  // the supervisor replaces it; its replacement reports ready
    }
  }
}

std::shared_ptr<job> engine::submit(submission&& s) {
  if (s.ends.size() >= (std::uint64_t{1} << 40)) throw std::length_error("chanpool pool: too many items");
  std::uint64_t previous = 0;
  for (std::size_t i = 0; i < s.ends.size(); ++i) {
    if (s.ends[i] - previous > options_.max_item_bytes)
      throw std::invalid_argument("chanpool pool: the arguments of item " + std::to_string(i) + " of task '" +
                                  s.task->name + "' encode to " + std::to_string(s.ends[i] - previous) +
                                  " bytes, over pool_options::max_item_bytes (" +
                                  std::to_string(options_.max_item_bytes) + ")");
    previous = s.ends[i];
  }
  job_record rec;
  rec.task = s.task;
  rec.args = std::move(s.args);
  rec.ends = std::move(s.ends);
  rec.chunksize = std::max<std::size_t>(1, s.chunksize);
  std::shared_ptr<job> state;
  {
    std::lock_guard lock(inbox_mutex_);
    if (closed_ || terminated_) throw pool_not_running("chanpool pool: the pool is closed or terminated");
    if (!broken_.empty()) throw pool_not_running("chanpool pool: the pool is broken: " + broken_);
    state = std::make_shared<job>(next_job_++, s.task->name, rec.ends.size());
    state->on_ready = std::move(s.on_ready);
    rec.state = state;
    inbox_.push_back(std::move(rec));
  }
  wake_scheduler();
  return state;
}

// The scheduler sleeps on the results channel: a wake message there brings it to the inbox. One
// is enough until the scheduler has looked (a burst of apply_async sends one, not thousands).
void engine::wake_scheduler() {
  if (wake_sent_.exchange(true, std::memory_order_acq_rel)) return;
  wire::result_header wake;
  wake.kind = wire::result_kind::wake;
  (void)results_.send(std::as_bytes(std::span(&wake, 1)), std::chrono::milliseconds(100));
}

void engine::take_submissions() {
  // Cleared before the inbox is read: a submission after this point sends a new wake-up.
  wake_sent_.store(false, std::memory_order_release);
  std::deque<job_record> taken;
  {
    std::lock_guard lock(inbox_mutex_);
    taken.swap(inbox_);
  }
  for (job_record& rec : taken) {
    const std::uint32_t id = rec.state->id();
    const std::size_t n = rec.ends.size();
    for (std::size_t i = 0; i < n;) {
      chunk_info c;
      c.first = i;
      const std::uint64_t start_byte = i == 0 ? 0 : rec.ends[i - 1];
      std::size_t j = i + 1;  // at least one item, however large
      while (j < n && j - i < rec.chunksize && rec.ends[j] - start_byte <= max_chunk_bytes) ++j;
      c.count = static_cast<std::uint32_t>(j - i);
      rec.chunks.push_back(c);
      i = j;
    }
    if (n == 0) {
      run_callback(*rec.state);
      continue;
    }
    dispatch_.add_job(id, static_cast<std::uint32_t>(rec.chunks.size()));
    jobs_.emplace(id, std::move(rec));
  }
}


// --- the scheduler thread ------------------------------------------------------------------------

void engine::scheduler_loop() {
  std::vector<std::byte> buffer;
  while (!stop_scheduler_.load(std::memory_order_acquire)) {
    take_submissions();
    dispatch();
    if (dispatch_.pending() != 0 || !jobs_.empty()) {
      // Nothing to do while work is out but results: fall through to the wait.
    } else {
      bool closed = false;
      {
        std::lock_guard lock(inbox_mutex_);
        closed = closed_ && inbox_.empty();
      }
      if (closed) send_stops();
    }
    // Sleeps on the results channel: results, worker reports and submissions' wake-ups all
    // arrive there. The timeout bounds how late a dead node is noticed.
    status st = results_.recv(buffer, liveness_period);
    for (int drained = 0; st == status::ok; ++drained) {
      handle_message(std::string_view(reinterpret_cast<const char*>(buffer.data()), buffer.size()));
      if (drained == 256) break;  // let dispatch() refill nodes between long bursts
      st = results_.recv(buffer, ch::try_once);
    }
    if (steady::now() >= next_liveness_check_) {
      check_liveness();
      next_liveness_check_ = steady::now() + liveness_period;
    }
  }
}

void engine::dispatch() {
  if (dispatch_.pending() == 0) return;
  if (dispatch_.live_nodes() == 0) {
    fail_everything(failure_kind::worker_lost, "every node of the pool is lost");
    return;
  }
  dispatch_.dispatch([this](std::uint32_t node, chunk_ref ref) { return offer_chunk(node, ref); });
}

// Sends `ref` to `node`'s task channel unless it is no longer needed.
dispatcher::offer engine::offer_chunk(std::uint32_t node, chunk_ref ref) {
  const auto it = jobs_.find(ref.job);
  if (it == jobs_.end()) return dispatcher::offer::dropped;  // its job finished (a re-run no longer needed)
  job_record& rec = it->second;
  chunk_info& c = rec.chunks[ref.chunk];
  if (c.attempts > 0) {  // a re-run: skip it if every item came back meanwhile
    bool all_done = true;
    for (std::uint64_t x = c.first; x < c.first + c.count && all_done; ++x) all_done = rec.state->item_finished(x);
    if (all_done) return dispatcher::offer::dropped;
  }
  wire::task_header h;
  h.task_id = rec.task->id;
  h.job = ref.job;
  h.chunk = ref.chunk;
  h.attempt = c.attempts;
  h.first_item = c.first;
  h.item_count = c.count;
  send_buffer_.clear();
  wire::append_pod(send_buffer_, h);
  for (std::uint64_t i = c.first; i < c.first + c.count; ++i) {
    const std::uint64_t begin = i == 0 ? 0 : rec.ends[i - 1];
    const auto length = static_cast<std::uint32_t>(rec.ends[i] - begin);
    wire::append_pod(send_buffer_, length);
    send_buffer_.append(rec.args, begin, length);
  }
  const status st = nodes_[node].tasks.send(std::as_bytes(std::span(send_buffer_.data(), send_buffer_.size())), ch::try_once);
  if (st == status::ok) {
    ++c.attempts;
    std::lock_guard lock(counters_mutex_);
    ++counters_.chunks_sent;
    return dispatcher::offer::sent;
  }
  if (st == status::peer_dead) node_lost(node, "node " + std::to_string(node) + " is unreachable (its agent or ours is gone)");
  return dispatcher::offer::blocked;
}

void engine::handle_message(std::string_view message) {
  const auto h = wire::decode_result_header(message, nodes_.size());
  if (!h) {
    std::lock_guard lock(counters_mutex_);
    ++counters_.bad_messages;
    return;
  }
  const std::string_view body = message.substr(sizeof *h);
  switch (h->kind) {
    case wire::result_kind::results: handle_results(*h, body); return;
    case wire::result_kind::worker_lost: handle_worker_lost(*h, body); return;
    case wire::result_kind::wake: return;
    case wire::result_kind::worker_ready:
      if (h->flags != 0) {  // a replacement worker whose initializer fails: nothing can run
        broken_ = "worker " + std::to_string(h->worker) + " on node " + std::to_string(h->node) + ": " + std::string(body);
        fail_everything(failure_kind::worker_lost, broken_);
      }
      return;
  }
  std::lock_guard lock(counters_mutex_);
  ++counters_.bad_messages;
}

void engine::handle_results(const wire::result_header& h, std::string_view body) {
  std::vector<job::item_bytes> items;
  if (!wire::decode_result_items(h, body, items)) {
    std::lock_guard lock(counters_mutex_);
    ++counters_.bad_messages;
    return;  // its chunk is re-run if its worker dies; a live worker never sends this
  }
  const bool last = (h.flags & 1u) != 0;
  if (last) dispatch_.chunk_done(h.node, {h.job, h.chunk}, static_cast<double>(h.busy_ns) * 1e-9);
  const auto it = jobs_.find(h.job);
  if (it == jobs_.end() || h.item_count == 0) {
    if (h.item_count != 0) {
      std::lock_guard lock(counters_mutex_);
      ++counters_.duplicate_results;
    }
    return;
  }
  job& state = *it->second.state;
  if (state.complete_items(std::string(body), items)) run_callback(state);
  finish_job_if_done(h.job);
}

void engine::handle_worker_lost(const wire::result_header& h, std::string_view body) {
  {
    std::lock_guard lock(counters_mutex_);
    ++counters_.workers_lost;
  }
  const std::string why = "its worker (node " + std::to_string(h.node) + ", pid " + std::to_string(h.pid) + ") " +
                          std::string(body);
  if (h.flags & wire::lost_running_chunk) {
    const chunk_ref ref{h.job, h.chunk};
    if (dispatch_.forget(h.node, ref)) chunk_lost(ref, why);
  } else if (h.flags & wire::lost_unknown_chunk) {
    // It died holding a message it had just taken: which chunk is unknown, so everything this
    // node holds runs again elsewhere too (duplicates of what still runs here are dropped).
    for (const chunk_ref& ref : dispatch_.take_outstanding(h.node)) chunk_lost(ref, why);
  }
}

void engine::chunk_lost(chunk_ref ref, const std::string& why) {
  const auto it = jobs_.find(ref.job);
  if (it == jobs_.end()) return;
  job_record& rec = it->second;
  const chunk_info& c = rec.chunks[ref.chunk];
  if (c.attempts > options_.max_task_retries) {
    const std::string message = "task '" + rec.task->name + "' (" + items_text(c.first, c.count) + "): " + why +
                                "; gave up after " + std::to_string(c.attempts) + " runs (max_task_retries=" +
                                std::to_string(options_.max_task_retries) + ")";
    if (rec.state->fail_items(c.first, c.count, failure_kind::worker_lost, message)) run_callback(*rec.state);
    finish_job_if_done(ref.job);
    return;
  }
  dispatch_.requeue_front(ref);
  std::lock_guard lock(counters_mutex_);
  ++counters_.chunks_rerun;
}

void engine::finish_job_if_done(std::uint32_t job_id) {
  const auto it = jobs_.find(job_id);
  if (it != jobs_.end() && it->second.state->all_finished()) {
    jobs_.erase(it);
    dispatch_.job_ended(job_id);
  }
}

void engine::run_callback(job& j) {
  if (!j.on_ready) return j.publish_ready();
  try {
    j.on_ready(j);
  } catch (const std::exception& e) {
    report("chanpool pool: a callback of task '%s' threw: %s (ignored)", j.task_name().c_str(), e.what());
  } catch (...) {
    report("chanpool pool: a callback of task '%s' threw (ignored)", j.task_name().c_str());
  }
  j.publish_ready();
}

void engine::check_liveness() {
  // Embedded, every agent and supervisor is a process of this host we can look at; launched
  // (mpirun/srun), only ours, and the other nodes are judged by their heartbeats.
  // One poll for every agent and supervisor (process_watch), not a /proc read each: this runs on
  // the scheduler thread every liveness_period.
  liveness_watch_.refresh();
  auto gone = [this](pid_t pid) { return liveness_watch_.exited(pid); };
  const bool own_agent_gone = !launched_ && gone(cluster_.agent_pid(0));
  for (std::uint32_t k = 0; k < nodes_.size(); ++k) {
    node_record& node = nodes_[k];
    if (!dispatch_.alive(k) || node.stop_sent) continue;  // a stopped node's processes exit: not a loss
    std::string why;
    if (node.supervisor > 0 && gone(node.supervisor)) {
      why = "node " + std::to_string(k) + "'s supervisor exited";
    } else if (!launched_ && gone(cluster_.agent_pid(k))) {
      why = "node " + std::to_string(k) + "'s agent exited";
    } else if (k != 0 && own_agent_gone) {
      why = "node 0's agent exited: node " + std::to_string(k) + " cannot reach the orchestrator";
    } else if (k != 0 && (client_.peer(k) == tp::peer_state::dead || client_.peer(k) == tp::peer_state::left)) {
      why = "node " + std::to_string(k) + " stopped answering heartbeats";
    }
    if (!why.empty()) node_lost(k, why);
  }
}

void engine::node_lost(std::uint32_t k, const std::string& why) {
  node_record& node = nodes_[k];
  if (!dispatch_.alive(k)) return;
  {
    std::lock_guard lock(counters_mutex_);
    ++counters_.nodes_lost;
  }
  report("chanpool pool: node %u lost: %s; its work runs again on the other nodes", k, why.c_str());
  // Its workers can no longer report; the supervisor takes them down.
  if (node.supervisor > 0) ::kill(node.supervisor, SIGTERM);
  for (const chunk_ref& ref : dispatch_.node_lost(k)) chunk_lost(ref, why);
  if (dispatch_.live_nodes() == 0) fail_everything(failure_kind::worker_lost, "every node of the pool is lost (last: " + why + ")");
}

void engine::fail_everything(failure_kind kind, const std::string& why) {
  for (auto& [id, rec] : jobs_) {
    if (rec.state->fail_items(0, rec.state->size(), kind, why)) run_callback(*rec.state);
    dispatch_.job_ended(id);
  }
  jobs_.clear();
  dispatch_.clear_pending();
}

void engine::send_stops() {
  for (std::uint32_t k = 0; k < nodes_.size(); ++k) {
    node_record& node = nodes_[k];
    if (!dispatch_.alive(k) || node.stop_sent) continue;
    wire::task_header stop;
    stop.kind = wire::task_kind::stop;
    for (std::uint32_t w = 0; w < node.workers; ++w)
      (void)node.tasks.send(std::as_bytes(std::span(&stop, 1)), std::chrono::seconds(1));
    node.stop_sent = true;
  }
}

// --- lifetime ------------------------------------------------------------------------------------

void engine::close() {
  {
    std::lock_guard lock(inbox_mutex_);
    closed_ = true;
  }
  wake_scheduler();
}

void engine::stop_processes(bool kill) {
  if (kill) {
    for (const node_record& n : nodes_)
      if (n.supervisor > 0) ::kill(n.supervisor, SIGTERM);
  }
  for (node_record& n : nodes_) {
    if (n.supervisor <= 0) continue;
    // A supervisor kills and reaps its workers on SIGTERM; give it a moment, then insist.
    for (int i = 0; i < 200 && ::waitpid(n.supervisor, nullptr, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (::waitpid(n.supervisor, nullptr, WNOHANG) == 0) {
      ::kill(n.supervisor, SIGKILL);
      ::waitpid(n.supervisor, nullptr, 0);
    }
    n.supervisor = -1;
  }
  cluster_.stop();
  if (agent_) {
    agent_->stop();  // says goodbye: launched nodes see node 0 leave and stop their workers
    agent_.reset();
  }
  if (results_.is_open()) {
    results_.close();
    (void)ch::channel::unlink(results_channel_name, {.job = tp::virtual_node_job(info_.job, 0)});
  }
  if (launched_) {  // node 0's namespace: what its dead workers left (the cluster does it embedded)
    for (node_record& n : nodes_) n.tasks = tp::remote_channel();
    client_ = tp::client();
    std::error_code ec;
    (void)ch::cleanup_stale({.job = tp::virtual_node_job(info_.job, 0)}, ec);
  }
}

void engine::terminate() {
  {
    std::lock_guard lock(inbox_mutex_);
    if (terminated_ && joined_) return;
    terminated_ = true;
    closed_ = true;
  }
  stop_scheduler_.store(true, std::memory_order_release);
  if (scheduler_.joinable()) scheduler_.join();
  std::deque<job_record> inbox;
  {
    std::lock_guard lock(inbox_mutex_);
    inbox.swap(inbox_);
  }
  for (job_record& rec : inbox) jobs_.emplace(rec.state->id(), std::move(rec));
  fail_everything(failure_kind::terminated, "the pool was terminated before this item finished");
  stop_processes(true);
  joined_ = true;
}

void engine::join() {
  {
    std::lock_guard lock(inbox_mutex_);
    if (!closed_) throw std::logic_error("chanpool pool: join() before close() or terminate()");
    if (joined_) return;
  }
  // The scheduler finishes the work, then sends each worker a stop message; the supervisors
  // exit once all their workers have. The scheduler thread reads the node records until it is
  // joined (its liveness checks), and nothing but that join orders its reads before a write
  // here (the stop went to another process): the records are written only after it.
  for (const node_record& n : nodes_)
    if (n.supervisor > 0) ::waitpid(n.supervisor, nullptr, 0);
  stop_scheduler_.store(true, std::memory_order_release);
  if (scheduler_.joinable()) scheduler_.join();
  for (node_record& n : nodes_) n.supervisor = -1;  // reaped above
  stop_processes(false);
  std::lock_guard lock(inbox_mutex_);
  joined_ = true;
}

pool_counters engine::counters() const {
  std::lock_guard lock(counters_mutex_);
  return counters_;
}

}  // namespace chanpool::pool::detail
