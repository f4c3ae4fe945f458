// The agent's progress thread: one loop over the completion queue and the inbox, and one sleep
// on both when neither has work (the CQ's wait file descriptor and the node's doorbell, polled
// together). A message through the agents thus wakes one thread per node, not two that then
// hand it to each other.
#include <poll.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>

#include <algorithm>
#include <ctime>

#include "agent_impl.hpp"

namespace chanpool::transport {

void agent::impl::progress_loop() {
  const std::uint64_t spin_ns = detail::as_ns(config.spin);
  const std::uint64_t start = detail::now_ns();
  clock.last_activity = clock.last_pass = clock.next_heartbeat = start;
  bool look_at_cq = true;
  while (!stopping.load(std::memory_order_relaxed)) {
    // After a wake by the doorbell alone the CQ was empty when the thread went to sleep and has
    // not signalled since: the inbox first (the CQ is read again on the next turn).
    bool cq_drained = false;
    bool worked = look_at_cq ? poll_completions(&cq_drained) : false;
    look_at_cq = true;
    bool inbox_worked = false;
    if (inbox_open.load(std::memory_order_acquire)) inbox_worked = drain_inbox();
    // A CQ read that returned less than it could was the CQ emptied, and the inbox had nothing:
    // go on to the idle path rather than read the CQ again. A read costs several system calls in
    // tcp;ofi_rxm (epoll_wait on its sockets and on its connection events), and what arrived
    // meanwhile is not lost: fi_trywait before the sleep sees it, and the CQ's fd stays readable.
    if (inbox_worked || (worked && !cq_drained)) continue;
    idle_duties();
    if (detail::now_ns() - clock.last_activity <= spin_ns) continue;  // config.spin: poll a while first
    look_at_cq = sleep_until_work(idle_sleep_ns(), inbox_open.load(std::memory_order_relaxed));
  }
}

bool agent::impl::poll_completions(bool* drained) {
  constexpr std::size_t batch = 64;
  fi_cq_data_entry entries[batch];
  const ssize_t n = fi_cq_read(endpoint.cq(), entries, batch);
  if (drained) *drained = n == -FI_EAGAIN || (n >= 0 && static_cast<std::size_t>(n) < batch);
  const std::uint64_t now = detail::now_ns();
  if (now - clock.last_pass > detail::as_ns(config.peer_timeout)) frozen_for(now - clock.last_pass);
  clock.last_pass = now;
  bool worked = false;
  if (n > 0) {
    clock.last_activity = now;
    touched.clear();
    for (ssize_t i = 0; i < n; ++i) handle_completion(entries[i], touched);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (std::uint32_t s : touched) send_owed(s, false);
    worked = true;
  } else if (n == -FI_EAVAIL) {
    handle_error_completion();
    worked = true;
  }
  if (now >= clock.next_tick) {
    clock.next_tick = now + 1'000'000;  // 1 ms
    tick(now, clock.next_heartbeat);
  }
  return worked;
}

// The inbox ran dry and the CQ is empty: what was held back for more traffic goes now.
void agent::impl::idle_duties() {
  // Credits go back as soon as the link is quiet: besides the window, they are what tells the far
  // agent that its pipe is idle, which lets its next partial batch go at once (outbound.hpp).
  return_all_credits();
  if (inbox_open.load(std::memory_order_relaxed)) {
    wake_room_waiters();
    flush_partials(true);
  }
}

// How long an idle progress thread may sleep: soon when something waits to be retried, else until
// the next heartbeat (at most 50 ms, so a stopped process is told from a slow one).
std::uint64_t agent::impl::idle_sleep_ns() {
  std::uint64_t ns = 0;
  if (in->any_pending()) {
    ns = 50'000;  // deliveries held by a full channel
  } else if (inbox_open.load(std::memory_order_relaxed) && partial_due()) {
    ns = detail::as_ns(config.flush_deadline);
  } else if (backlog_size.load(std::memory_order_relaxed) > 0 || provider_busy.load(std::memory_order_relaxed)) {
    ns = 1'000'000;
  } else {
    const std::uint64_t now = detail::now_ns();
    const std::uint64_t until = clock.next_heartbeat > now ? clock.next_heartbeat - now : 0;
    ns = std::clamp<std::uint64_t>(until, 1'000'000, 50'000'000);
  }
  // A CQ without a file descriptor (shm's) is looked at again after a nap.
  if (cq_wait_fd < 0) ns = std::min<std::uint64_t>(ns, 100'000);
  return ns;
}

bool agent::impl::sleep_until_work(std::uint64_t timeout_ns, bool watch_inbox) {
  std::atomic_ref<std::uint32_t> asleep(shared.state->agent_asleep);
  if (watch_inbox) {
    // The agent's half of the doorbell protocol (doorbell.hpp); should_ring() is the sender's.
    asleep.store(1, std::memory_order_relaxed);
    channels::detail::full_fence();
    if (inbox.poll().readable) {
      asleep.store(0, std::memory_order_relaxed);
      return true;
    }
  }
  pollfd fds[2] = {{bell.fd(), POLLIN, 0}, {cq_wait_fd, POLLIN, 0}};
  nfds_t watched = 1;
  if (cq_wait_fd >= 0) {
    // The provider may hold completions or progress that its fd does not show: fi_trywait says
    // whether sleeping on the fd is safe now.
    fid* cq = &endpoint.cq()->fid;
    if (fi_trywait(endpoint.fabric(), &cq, 1) == FI_SUCCESS) {
      watched = 2;
    } else {
      timeout_ns = 0;
    }
  }
  int ready = 0;
  if (timeout_ns != 0) {
    const timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000), static_cast<long>(timeout_ns % 1'000'000'000)};
    ready = ::ppoll(fds, watched, &ts, nullptr);
  }
  if (watch_inbox) asleep.store(0, std::memory_order_relaxed);
  if (fds[0].revents & POLLIN) bell.drain();
  // Only the doorbell fired: the CQ had nothing pending (fi_trywait) and has not signalled.
  return !(watched == 2 && ready == 1 && (fds[0].revents & POLLIN) && fds[1].revents == 0);
}

// Called while an inbox record waits for credit, a free frame buffer or large-message room: all
// of them come back through the completion queue, so this makes progress (the inbound half,
// credits owed to peers that may be waiting on this node in turn) until stall_epoch moves, the
// agent stops, or 100 ms pass (the caller looks again). The inbox waits meanwhile.
void agent::impl::wait_stalled(std::uint64_t seen) {
  const std::uint64_t give_up = detail::now_ns() + 100'000'000;
  while (stall_epoch.load(std::memory_order_acquire) == seen && !stopping.load(std::memory_order_relaxed)) {
    if (poll_completions()) continue;
    return_all_credits();
    const std::uint64_t now = detail::now_ns();
    if (now >= give_up) return;
    sleep_until_work(std::min(idle_sleep_ns(), give_up - now), /*watch_inbox=*/false);
  }
}

}  // namespace chanpool::transport
