// The node side of a Pool: supervisor and worker processes. See node.hpp.
#include "node.hpp"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "chanpool/channels/channel.hpp"
#include "chanpool/channels/cleanup.hpp"
#include "chanpool/pool/task.hpp"
#include "chanpool/transport/client.hpp"
#include "placement.hpp"
#include "process.hpp"  // channels/src: following the parent
#include "wire_decode.hpp"
#include "report.hpp"

namespace chanpool::pool::detail {
namespace {

namespace ch = chanpool::channels;
namespace tp = chanpool::transport;
using steady = std::chrono::steady_clock;

// Result messages are cut at this size so one chunk's results never need one huge message.
constexpr std::size_t result_message_target = 256 * 1024;

[[noreturn]] void die(int code) {
  std::fflush(stderr);
  ::_exit(code);
}

// A worker dies with its supervisor (single-threaded, so the signal means its death): the pool's
// processes never outlive the process that owns them.
void follow_parent(int parent_pid) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent_pid) die(exit_stopped);
}

// What a supervisor waits for: its workers, its owner's SIGTERM/SIGINT (stop), and the signal
// that its parent's forking thread ended (process.hpp: then it checks whether the parent did).
sigset_t supervisor_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (const int s : {SIGCHLD, SIGTERM, SIGINT, ch::detail::parent_death_signal}) sigaddset(&set, s);
  return set;
}

std::string describe_exit(int wstatus) {
  if (WIFSIGNALED(wstatus)) {
    const int sig = WTERMSIG(wstatus);
    std::string s = "killed by signal " + std::to_string(sig);
    if (const char* name = ::sigabbrev_np(sig)) s += std::string(" (SIG") + name + ")";
    return s;
  }
  if (WIFEXITED(wstatus)) return "exited with status " + std::to_string(WEXITSTATUS(wstatus));
  return "ended (wait status " + std::to_string(wstatus) + ")";
}

// --- worker ------------------------------------------------------------------------------------

// Set once in each worker process, before its first task.
std::optional<worker_identity> this_worker;


class worker {
 public:
  worker(const node_plan& plan, std::uint32_t index, worker_slot& slot) : plan_(plan), index_(index), slot_(slot) {}

  [[noreturn]] void run() {
    this_worker = worker_identity{plan_.node, index_};
    if (plan_.pin) {
      if (auto why = pin_to_core(plan_.first_core + index_); !why.empty())
        report("chanpool pool: worker %u on node %u not pinned: %s", index_, plan_.node, why.c_str());
    }
    setup();
    send_ready();
    std::uint32_t chunks_done = 0;
    std::string payload;
    for (;;) {
      slot_.activity.store(worker_activity::receiving, std::memory_order_release);
      ch::recv_claim claim;
      const status st = tasks_.claim_recv(claim);
      if (st == status::closed) die(exit_stopped);
      if (st != status::ok) {
        report("chanpool pool: worker %u on node %u: receive failed (%s)", index_, plan_.node,
                     std::string(to_string(st)).c_str());
        die(exit_setup_failed);
      }
      const auto data = claim.data();
      const std::string_view message(reinterpret_cast<const char*>(data.data()), data.size());
      const auto header = wire::decode_task_header(message);
      if (!header || !wire::plausible_item_count(header->item_count, message.size() - sizeof(wire::task_header))) {
        tasks_.release(claim);
        report("chanpool pool: worker %u on node %u dropped a malformed task message (%zu bytes)",
                     index_, plan_.node, message.size());
        continue;
      }
      if (header->kind == wire::task_kind::stop) {
        tasks_.release(claim);
        slot_.activity.store(worker_activity::idle, std::memory_order_release);
        die(exit_stopped);
      }
      slot_.job.store(header->job, std::memory_order_relaxed);
      slot_.chunk.store(header->chunk, std::memory_order_relaxed);
      slot_.attempt.store(header->attempt, std::memory_order_relaxed);
      slot_.item_count.store(header->item_count, std::memory_order_relaxed);
      slot_.first_item.store(header->first_item, std::memory_order_relaxed);
      slot_.activity.store(worker_activity::running, std::memory_order_release);
      payload.assign(message.substr(sizeof(wire::task_header)));
      tasks_.release(claim);

      run_chunk(*header, payload);
      slot_.activity.store(worker_activity::idle, std::memory_order_release);
      if (plan_.maxtasksperchild != 0 && ++chunks_done >= plan_.maxtasksperchild) die(exit_maxtasks);
    }
  }

 private:
  void setup() {
    auto tasks = ch::channel::open(tasks_channel_name, {.job = plan_.node_job});
    if (!tasks) {
      report("chanpool pool: worker on node %u cannot open its task channel: %s", plan_.node,
                   tasks.error().message().c_str());
      die(exit_setup_failed);
    }
    tasks_ = std::move(*tasks);
    if (!plan_.spin) tasks_.set_wait({.mode = ch::wait_mode::idle});
    auto c = tp::client::attach(plan_.node_job);
    if (!c) {
      report("chanpool pool: worker on node %u cannot attach to its agent: %s", plan_.node,
                   c.error().message().c_str());
      die(exit_transport_gone);
    }
    client_ = std::move(*c);
    // Launched by mpirun/srun, node 0 may create the results channel after this worker starts.
    auto r = client_.open({0, results_channel_name});
    for (int tries = 0; !r && r.error() == make_error_code(errc::not_found) && tries < 60'000; ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      r = client_.open({0, results_channel_name});
    }
    if (!r) {
      report("chanpool pool: worker on node %u cannot reach the results channel on node 0: %s",
                   plan_.node, r.error().message().c_str());
      die(exit_transport_gone);
    }
    results_ = std::move(*r);
  }

  wire::result_header header_for(wire::result_kind kind) const {
    wire::result_header h;
    h.kind = kind;
    h.node = plan_.node;
    h.worker = index_;
    h.pid = static_cast<std::uint32_t>(::getpid());
    return h;
  }

  void send_ready() {
    std::string message;
    wire::result_header h = header_for(wire::result_kind::worker_ready);
    std::string failure;
    if (!plan_.initializer_task.empty()) {
      const task_entry* init = find_task(plan_.initializer_task);
      if (init == nullptr) {
        failure = "initializer '" + plan_.initializer_task + "' is not registered in this binary";
      } else {
        std::string ignored;
        try {
          init->invoke(plan_.initializer_args, ignored);
        } catch (const std::exception& e) {
          failure = "initializer '" + plan_.initializer_task + "' failed: " + e.what();
        } catch (...) {
          failure = "initializer '" + plan_.initializer_task + "' failed: unknown exception";
        }
      }
    }
    if (!failure.empty()) h.flags = 1;
    wire::append_pod(message, h);
    message += failure;
    send_result_message(message);
    if (!failure.empty()) die(exit_setup_failed);
  }

  void send_result_message(const std::string& message) {
    const status st = results_.send(std::as_bytes(std::span(message.data(), message.size())));
    if (st == status::ok) return;
    report("chanpool pool: worker %u on node %u cannot send results (%s); exiting", index_,
                 plan_.node, std::string(to_string(st)).c_str());
    die(st == status::peer_dead ? exit_transport_gone : exit_setup_failed);
  }

  // Appends one item's record to `out`: the task's result for `args`, or why there is none (no
  // args: the task message was malformed; no entry: the task id is not registered here).
  void append_item_record(const wire::task_header& task, const task_entry* entry,
                          std::optional<std::string_view> args, std::string& out) {
    const std::size_t record_at = out.size();
    wire::item_record rec;
    wire::append_pod(out, rec);
    bool ok = args.has_value();
    std::string error = ok ? "" : "malformed task message: its item records do not fill it exactly";
    if (ok && entry == nullptr) {
      ok = false;
      error = "no task with id " + std::to_string(task.task_id) + " is registered in the worker's binary";
    }
    if (ok) {
      try {
        entry->invoke(*args, out);
      } catch (const std::exception& e) {
        ok = false;
        error = e.what();
      } catch (...) {
        ok = false;
        error = "unknown exception (not derived from std::exception)";
      }
      if (ok && out.size() - record_at - sizeof rec > plan_.max_item_bytes) {
        ok = false;
        error = "its result is " + std::to_string(out.size() - record_at - sizeof rec) +
                " bytes, over the pool's max_item_bytes (" + std::to_string(plan_.max_item_bytes) + ")";
      }
    }
    if (!ok) {
      out.resize(record_at + sizeof rec);
      out += error;
    }
    rec.length = static_cast<std::uint32_t>(out.size() - record_at - sizeof rec);
    rec.ok = ok ? 1 : 0;
    std::memcpy(out.data() + record_at, &rec, sizeof rec);
  }

  void run_chunk(const wire::task_header& task, std::string_view payload) {
    const task_entry* entry = find_task(task.task_id);
    std::string out;
    std::uint64_t first = task.first_item;
    std::uint32_t count = 0;
    const auto started = steady::now();
    auto begin_message = [&] {
      out.clear();
      wire::result_header h = header_for(wire::result_kind::results);
      h.job = task.job;
      h.chunk = task.chunk;
      h.attempt = task.attempt;
      wire::append_pod(out, h);
      count = 0;
    };
    auto finish_message = [&](bool last) {
      wire::result_header h;
      std::memcpy(&h, out.data(), sizeof h);
      h.first_item = first;
      h.item_count = count;
      h.busy_ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(steady::now() - started).count());
      h.flags = last ? 1u : 0u;  // the chunk's last result message
      std::memcpy(out.data(), &h, sizeof h);
      send_result_message(out);
      first += count;
    };
    begin_message();
    std::vector<std::string_view> items;
    const bool well_formed = wire::decode_task_items(task.item_count, payload, items);
    for (std::uint32_t i = 0; i < task.item_count; ++i) {
      append_item_record(task, entry, well_formed ? items[i] : std::optional<std::string_view>{}, out);
      ++count;
      if (out.size() >= result_message_target && i + 1 < task.item_count) {
        finish_message(false);
        begin_message();
      }
    }
    finish_message(true);
  }

  const node_plan& plan_;
  const std::uint32_t index_;
  worker_slot& slot_;
  ch::channel tasks_;
  tp::client client_;
  tp::remote_channel results_;
};

// --- supervisor --------------------------------------------------------------------------------

class supervisor {
 public:
  explicit supervisor(const node_plan& plan) : plan_(plan) {}

  [[noreturn]] void run() {
    const sigset_t set = supervisor_signals();  // blocked by run_supervisor

    ch::channel_config cfg;
    cfg.capacity = plan_.tasks_capacity;
    cfg.slot_bytes = 256;
    cfg.heap_bytes = std::max<std::uint64_t>(64u << 20, 4ull * plan_.max_item_bytes);
    auto tasks = ch::channel::create(tasks_channel_name, cfg, {.job = plan_.node_job});
    if (!tasks) {
      report("chanpool pool: node %u cannot create its task channel: %s", plan_.node,
                   tasks.error().message().c_str());
      die(exit_setup_failed);
    }
    tasks_ = std::move(*tasks);

    void* shared = ::mmap(nullptr, sizeof(worker_slot) * plan_.workers, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
      report("chanpool pool: node %u: mmap of worker slots failed: %s", plan_.node, std::strerror(errno));
      die(exit_setup_failed);
    }
    slots_ = new (shared) worker_slot[plan_.workers];
    pids_.assign(plan_.workers, -1);
    stopped_.assign(plan_.workers, false);
    setup_failures_.assign(plan_.workers, 0);
    for (std::uint32_t i = 0; i < plan_.workers; ++i) spawn(i);
    lost_seen_ = tasks_.stats().lost_messages;

    const int parent = ::getppid();
    for (;;) {
      timespec wait{0, 200'000'000};
      siginfo_t info;
      const int sig = ::sigtimedwait(&set, &info, &wait);
      // A parent killed with SIGKILL ends thread by thread: parent_death_signal may come while a
      // thread of it still runs (getppid() unchanged), and again once the last one has ended.
      if (ch::detail::parent_gone(static_cast<std::uint32_t>(parent))) terminate_workers(true);
      if (sig == SIGTERM || sig == SIGINT) terminate_workers(false);
      reap();
      if (std::all_of(stopped_.begin(), stopped_.end(), [](bool s) { return s; })) die(exit_stopped);
    }
  }

 private:
  void spawn(std::uint32_t i) {
    slots_[i].activity.store(worker_activity::idle, std::memory_order_relaxed);
    const int me = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      sigset_t all;
      sigfillset(&all);
      ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
      follow_parent(me);
      tasks_.close();  // the worker opens its own handle (its own registration in the segment)
      worker(plan_, i, slots_[i]).run();
    }
    if (pid < 0) {
      report("chanpool pool: node %u cannot fork worker %u: %s", plan_.node, i, std::strerror(errno));
      stopped_[i] = true;
      return;
    }
    pids_[i] = pid;
  }

  // parent_gone: the process that owns this node (its agent, under a launcher) died without
  // stopping it (killed, or its launcher ended the job): nobody else will remove the node's
  // segments, so the supervisor, the last of the node's processes, does.
  [[noreturn]] void terminate_workers(bool parent_gone) {
    for (const pid_t pid : pids_)
      if (pid > 0) ::kill(pid, SIGKILL);
    for (const pid_t pid : pids_)
      if (pid > 0) ::waitpid(pid, nullptr, 0);
    if (parent_gone) {
      tasks_.close();
      (void)ch::channel::unlink(tasks_channel_name, {.job = plan_.node_job});
      reporter_.reset();
      reporter_client_ = tp::client{};
      std::error_code ec;
      (void)ch::cleanup_stale({.job = plan_.node_job}, ec);
    }
    die(exit_stopped);
  }

  void reap() {
    for (;;) {
      int wstatus = 0;
      const pid_t pid = ::waitpid(-1, &wstatus, WNOHANG);
      if (pid <= 0) return;
      const auto it = std::find(pids_.begin(), pids_.end(), pid);
      if (it == pids_.end()) continue;
      const auto i = static_cast<std::uint32_t>(it - pids_.begin());
      pids_[i] = -1;
      const int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
      if (code == exit_stopped || code == exit_transport_gone) {
        stopped_[i] = true;
        continue;
      }
      if (code == exit_maxtasks) {
        spawn(i);
        continue;
      }
      if (code == exit_setup_failed && ++setup_failures_[i] > 3) {
        report("chanpool pool: node %u: worker %u failed to start 4 times; not replaced", plan_.node, i);
        stopped_[i] = true;
        report_lost(i, pid, wstatus);
        continue;
      }
      report_lost(i, pid, wstatus);
      spawn(i);
    }
  }

  // Tells the orchestrator what the dead worker was doing, so it can re-run that chunk.
  void report_lost(std::uint32_t i, pid_t pid, int wstatus) {
    const worker_slot& s = slots_[i];
    const worker_activity activity = s.activity.load(std::memory_order_acquire);
    tasks_.repair();  // frees a slot it held; a message it had claimed is dropped and counted
    const std::uint64_t lost_now = tasks_.stats().lost_messages;
    const bool lost_a_message = lost_now != lost_seen_;
    lost_seen_ = lost_now;

    wire::result_header h;
    h.kind = wire::result_kind::worker_lost;
    h.node = plan_.node;
    h.worker = i;
    h.pid = static_cast<std::uint32_t>(pid);
    if (activity == worker_activity::running) {
      h.flags = wire::lost_running_chunk;
      h.job = s.job.load(std::memory_order_relaxed);
      h.chunk = s.chunk.load(std::memory_order_relaxed);
      h.attempt = s.attempt.load(std::memory_order_relaxed);
      h.item_count = s.item_count.load(std::memory_order_relaxed);
      h.first_item = s.first_item.load(std::memory_order_relaxed);
    } else if (lost_a_message) {
      h.flags = wire::lost_unknown_chunk;
    }
    std::string message;
    wire::append_pod(message, h);
    message += describe_exit(wstatus);
    if (!reporter_) {
      auto c = tp::client::attach(plan_.node_job, std::chrono::seconds(5));
      if (!c) return;
      auto r = c->open({0, results_channel_name});
      if (!r) return;
      reporter_client_ = std::move(*c);
      reporter_ = std::move(*r);
    }
    (void)reporter_->send(std::as_bytes(std::span(message.data(), message.size())), std::chrono::seconds(5));
  }

  const node_plan& plan_;
  ch::channel tasks_;
  worker_slot* slots_ = nullptr;
  std::vector<pid_t> pids_;
  std::vector<bool> stopped_;
  std::vector<int> setup_failures_;
  std::uint64_t lost_seen_ = 0;
  tp::client reporter_client_;
  std::optional<tp::remote_channel> reporter_;
};

}  // namespace

void run_supervisor(const node_plan& plan, int parent_pid) {
  // Its own process group: a launcher ending the job signals the rank's group (the rank and,
  // without this, the supervisor and workers at once); the supervisor then outlives the rank
  // by the moment it takes to stop the workers and remove the node's segments.
  ::setpgid(0, 0);
  // Blocked before anything can send them, so none of them ends the supervisor unhandled.
  const sigset_t set = supervisor_signals();
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  if (!ch::detail::follow_parent_death(static_cast<std::uint32_t>(parent_pid))) die(exit_stopped);
  supervisor(plan).run();
}

}  // namespace chanpool::pool::detail

namespace chanpool::pool {

std::optional<worker_identity> current_worker() noexcept { return detail::this_worker; }

}  // namespace chanpool::pool
