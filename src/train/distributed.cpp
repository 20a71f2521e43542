// c10d needs USE_C10D_GLOO (and USE_C10D_NCCL) defined to declare its process groups; CMake sets
// them, and MTREC_HAVE_GLOO / MTREC_HAVE_NCCL where the headers exist, for this file only.
#ifndef MTREC_HAVE_NCCL
#define MTREC_HAVE_NCCL 0
#endif
#ifndef MTREC_HAVE_GLOO
#define MTREC_HAVE_GLOO 0
#endif
#include "mtrec/train/distributed.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#if MTREC_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if MTREC_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/torch.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "mtrec/core/check.h"
#include "mtrec/core/log.h"

extern char** environ;

namespace mtrec {

namespace {

using Clock = std::chrono::steady_clock;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  MTREC_CHECK(end != v && *end == '\0' && x >= 0 && x <= 1 << 30, "environment variable ", name, "='", v,
              "' is not a non-negative integer");
  return int(x);
}

std::string env_str(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? fallback : std::string(v);
}

std::chrono::milliseconds millis(double seconds) { return std::chrono::milliseconds(int64_t(seconds * 1000.0)); }

constexpr double kHeartbeatS = 0.5;

}  // namespace

DistributedOptions DistributedOptions::from_env() {
  DistributedOptions o;
  o.world_size() = env_int("WORLD_SIZE", 1);
  o.rank() = env_int("RANK", 0);
  o.local_rank() = env_int("LOCAL_RANK", o.rank());
  o.local_world_size() = env_int("LOCAL_WORLD_SIZE", o.world_size());
  o.master_addr() = env_str("MASTER_ADDR", o.master_addr());
  o.master_port() = env_int("MASTER_PORT", o.master_port());
  o.agent_store() = env_str("TORCHELASTIC_USE_AGENT_STORE", "") == "True";
  o.store_prefix() = "mtrec/attempt_" + std::to_string(env_int("TORCHELASTIC_RESTART_COUNT", 0)) + "/";
  const std::string t = env_str("MTREC_DIST_TIMEOUT", "");
  if (!t.empty()) {
    char* end = nullptr;
    o.timeout_s() = std::strtod(t.c_str(), &end);
    MTREC_CHECK(end != t.c_str() && *end == '\0' && o.timeout_s() > 0, "environment variable MTREC_DIST_TIMEOUT='", t,
                "' is not a positive number of seconds");
  }
  MTREC_CHECK(o.world_size() >= 1 && o.rank() < o.world_size(), "environment: RANK=", o.rank(),
              " is not below WORLD_SIZE=", o.world_size());
  MTREC_CHECK(o.master_port() > 0 && o.master_port() < 65536, "environment: MASTER_PORT=", o.master_port(),
              " is not a TCP port");
  return o;
}

// ---------------------------------------------------------------------------------------------
// Communicator

struct Communicator::Pending {
  c10::intrusive_ptr<c10d::Work> work;
  std::string what;
  int64_t seq = 0;
  Clock::time_point started;
};

struct Communicator::Impl {
  DistributedOptions o;
  c10::Device device = c10::kCPU;
  c10::intrusive_ptr<c10d::Store> store;  // prefixed
  // LibTorch 2.x derives the process groups from c10d::Backend, 1.13 from c10d::ProcessGroup:
  // each is held as itself and called through call().
#if MTREC_HAVE_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#if MTREC_HAVE_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  std::string backend;
  template <typename F>
  c10::intrusive_ptr<c10d::Work> call(F&& f) {
#if MTREC_HAVE_NCCL
    if (nccl) return f(*nccl);
#endif
#if MTREC_HAVE_GLOO
    if (gloo) return f(*gloo);
#endif
    MTREC_CHECK(false, "distributed: no process group");
    return {};
  }
  CommStats stats;
  std::atomic<int64_t> seq{0};  // collectives started, published with the heartbeat
  std::thread heartbeat;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false, wake = false;

  std::string where() const { return o.master_addr() + ":" + std::to_string(o.master_port()); }

  c10::intrusive_ptr<c10d::Store> connect(bool server, double timeout_s) const { return connect(o, server, timeout_s); }
  static c10::intrusive_ptr<c10d::Store> connect(const DistributedOptions& o, bool server, double timeout_s) {
    c10d::TCPStoreOptions so;
    so.port = uint16_t(o.master_port());
    so.isServer = server;
    so.numWorkers = server ? c10::optional<std::size_t>(size_t(o.world_size())) : c10::nullopt;
    so.waitWorkers = false;
    so.timeout = millis(timeout_s);
    auto tcp = c10::make_intrusive<c10d::TCPStore>(o.master_addr(), so);
    return c10::make_intrusive<c10d::PrefixStore>(o.store_prefix(), tcp);
  }

  bool broken = false;       // a collective failed: the group is left to the process's end
  std::atomic<int> busy{0};  // > 0: outside collectives on purpose (Communicator::Busy)
  std::string busy_what;     // what, for the others' messages (guarded by mu)

  void start_heartbeat() {
    // Its own connection: the main one may be blocked inside a collective's rendezvous.
    auto hb = connect(false, std::max(5.0, o.timeout_s()));
    heartbeat = std::thread([this, hb] {
      int64_t beat = 0;
      std::unique_lock<std::mutex> lock(mu);
      while (!stopping) {
        // "beat collectives busy what": what may hold spaces, it comes last.
        const std::string v = std::to_string(++beat) + " " + std::to_string(seq.load()) + " " +
                              std::to_string(busy.load() > 0 ? 1 : 0) + " " + (busy.load() > 0 ? busy_what : "-");
        lock.unlock();
        try {
          hb->set("hb/" + std::to_string(o.rank()), std::vector<uint8_t>(v.begin(), v.end()));
        } catch (const std::exception&) {
          return;  // the store is gone: whoever waits on a collective reports it
        }
        lock.lock();
        cv.wait_for(lock, millis(kHeartbeatS), [this] { return stopping || wake; });
        wake = false;
      }
    });
  }

  struct Beat {
    int64_t beat = -1, seq = -1;
    bool busy = false;
    std::string what;
  };
  // Every rank's heartbeat, twice, 4 beats apart; throws when the store is unreachable.
  // beats_twice on a thread of its own, given `limit_s`: a rank stopped in the middle of a request
  // to the store (a hung process) leaves the store's single-threaded server waiting for the rest,
  // and every later request would wait with it. Throws when it does not answer in time.
  std::pair<std::vector<Beat>, std::vector<Beat>> beats_twice_bounded(double limit_s = 6.0) {
    struct Shared {
      std::mutex mu;
      std::condition_variable cv;
      bool done = false, ok = false;
      std::pair<std::vector<Beat>, std::vector<Beat>> beats;
    };
    auto sh = std::make_shared<Shared>();
    std::thread([opts = o, sh] {
      try {
        auto b = beats_twice(opts);
        std::lock_guard<std::mutex> lock(sh->mu);
        sh->beats = std::move(b), sh->ok = true;
      } catch (const std::exception&) {
      }
      std::lock_guard<std::mutex> lock(sh->mu);
      sh->done = true;
      sh->cv.notify_all();
    }).detach();  // left behind when the store hangs; it holds only `sh` and a copy of the options
    std::unique_lock<std::mutex> lock(sh->mu);
    sh->cv.wait_for(lock, millis(limit_s), [&] { return sh->done; });
    MTREC_CHECK(sh->done && sh->ok, "the rendezvous store does not answer");
    return sh->beats;
  }

  // Where each rank runs (host, pid), published before the group forms: a rank on this host is
  // checked through /proc even when the store does not answer.
  std::vector<std::pair<std::string, long>> where_ranks;
  static std::string host_name() {
    char h[256] = {0};
    ::gethostname(h, sizeof(h) - 1);
    return h;
  }
  // "exited", "stopped" (SIGSTOP, a debugger) or "" (running, or not on this host).
  std::string local_state(int r) const {
    if (size_t(r) >= where_ranks.size() || where_ranks[size_t(r)].first != host_name()) return "";
    std::ifstream in("/proc/" + std::to_string(where_ranks[size_t(r)].second) + "/stat");
    if (!in) return "exited";
    std::string line;
    std::getline(in, line);
    const auto close = line.rfind(')');
    const char st = close != std::string::npos && close + 2 < line.size() ? line[close + 2] : '?';
    if (st == 'Z' || st == 'X') return "exited";
    if (st == 'T' || st == 't') return "stopped (SIGSTOP or a debugger)";
    return "";
  }

  static std::pair<std::vector<Beat>, std::vector<Beat>> beats_twice(const DistributedOptions& o) {
    auto read = [&](c10::intrusive_ptr<c10d::Store>& s) {
      std::vector<Beat> out(size_t(o.world_size()));
      for (int r = 0; r < o.world_size(); ++r) {
        const std::string key = "hb/" + std::to_string(r);
        if (!s->check({key})) continue;
        auto v = s->get(key);
        std::istringstream in(std::string(v.begin(), v.end()));
        int busy_flag = 0;
        in >> out[size_t(r)].beat >> out[size_t(r)].seq >> busy_flag;
        out[size_t(r)].busy = busy_flag != 0;
        std::getline(in >> std::ws, out[size_t(r)].what);
      }
      return out;
    };
    auto s = connect(o, false, 3.0);
    auto first = read(s);
    std::this_thread::sleep_for(millis(4 * kHeartbeatS));
    return {first, read(s)};
  }

  // Past the timeout, a collective is still waited for while every rank is alive and one of those
  // that have not reached it says it is busy on purpose (rank 0 writing a checkpoint), and none
  // of them is stuck (behind and not busy).
  bool others_busy(const Pending& p) {
    for (int r = 0; r < o.world_size(); ++r)
      if (r != o.rank() && !local_state(r).empty()) return false;
    try {
      auto [b1, b2] = beats_twice_bounded();
      bool any_busy = false;
      for (int r = 0; r < o.world_size(); ++r) {
        if (r == o.rank()) continue;
        const Beat &x = b1[size_t(r)], &y = b2[size_t(r)];
        if (y.beat < 0 || y.beat == x.beat) return false;  // dead or hung
        if (y.seq < p.seq && !y.busy) return false;        // behind and not busy: stuck
        any_busy |= y.seq < p.seq && y.busy;
      }
      return any_busy;
    } catch (const std::exception&) {
      return false;
    }
  }

  // Why a collective failed, naming the rank(s) at fault from their heartbeats.
  std::string diagnose(const Pending& p, const std::string& cause) {
    const double waited = std::chrono::duration<double>(Clock::now() - p.started).count();
    std::ostringstream msg;
    msg << "distributed training stopped on rank " << o.rank() << " of " << o.world_size() << ": " << p.what
        << " (collective #" << p.seq << ") failed after " << fmt::format("{:.1f}", waited) << " s (timeout "
        << o.timeout_s() << " s): ";
    std::vector<Beat> b1, b2;
    std::vector<std::string> dead, behind;
    bool store_ok = true;
    try {
      std::tie(b1, b2) = beats_twice_bounded();
    } catch (const std::exception&) {
      store_ok = false;
    }
    for (int r = 0; r < o.world_size() && !store_ok; ++r) {
      const std::string st = r == o.rank() ? "" : local_state(r);
      if (!st.empty()) dead.push_back("rank " + std::to_string(r) + " stopped responding (its process has " + st + ")");
    }
    if (!store_ok && dead.empty()) {
      msg << (o.agent_store() ? "the rendezvous store at " + where() + " (torchrun's agent) does not answer"
                              : "rank 0 is gone or hangs (its rendezvous store at " + where() + " does not answer)")
          << "; cause: " << cause;
      return msg.str();
    }
    for (int r = 0; r < o.world_size() && store_ok; ++r) {
      if (r == o.rank()) continue;
      const Beat &x = b1[size_t(r)], &y = b2[size_t(r)];
      const std::string st = local_state(r);
      if (!st.empty())
        dead.push_back("rank " + std::to_string(r) + " stopped responding (its process has " + st + ")");
      else if (y.beat < 0 || y.beat == x.beat)
        dead.push_back("rank " + std::to_string(r) + " stopped responding (no heartbeat for " +
                       fmt::format("{}", 4 * kHeartbeatS) + " s: the process died or hangs)");
      else if (y.seq < p.seq)
        behind.push_back(
            "rank " + std::to_string(r) + " (at collective #" + std::to_string(y.seq) +
            (y.busy ? ", busy " + y.what + " past busy_timeout " + fmt::format("{}", o.busy_timeout_s()) + " s" : "") +
            ")");
    }
    auto join = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
      return s;
    };
    if (!dead.empty())
      msg << join(dead);
    else if (!behind.empty())
      msg << join(behind) << (behind.size() == 1 ? " is" : " are")
          << " alive but did not reach this collective in time";
    else
      msg << "every rank is alive and reached it";
    msg << "; cause: " << cause;
    return msg.str();
  }

  Handle launch(c10::intrusive_ptr<c10d::Work> work, const std::string& what, int64_t bytes) {
    auto h = std::make_shared<Pending>();
    h->work = std::move(work);
    h->what = what;
    h->seq = ++seq;
    h->started = Clock::now();
    ++stats.collectives;
    stats.bytes += bytes;
    return h;
  }

  [[noreturn]] void fail(const Pending& p, const std::string& cause) {
    broken = true;
    throw Error(diagnose(p, cause));
  }

  void wait(const Pending& p) {
    const auto t0 = Clock::now();
    auto first_line = [](std::string m) {
      if (auto nl = m.find('\n'); nl != std::string::npos) m = m.substr(0, nl);
      return m;
    };
#if MTREC_HAVE_NCCL
    if (nccl) {  // NCCL_BLOCKING_WAIT: wait() blocks and times out itself
      try {
        p.work->wait(millis(o.timeout_s()));
      } catch (const std::exception& e) {
        fail(p, first_line(e.what()));
      }
      stats.wait_s += std::chrono::duration<double>(Clock::now() - t0).count();
      return;
    }
#endif
    // Gloo's own timeout is busy_timeout (it aborts the collective); here the wait is cut into
    // slices, and past timeout_s it goes on only while the ranks it waits for are busy on purpose.
    auto deadline = p.started + millis(o.timeout_s());
    bool seen_busy = false, last_look = false;
    for (;;) {
      const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
      try {
        p.work->wait(millis(std::max(0.05, std::min(1.0, left))));
        break;
      } catch (const std::exception& e) {
        if (p.work->isCompleted()) fail(p, first_line(e.what()));  // the collective failed
      }
      const auto now = Clock::now();
      if (now < deadline || p.work->isCompleted()) continue;
      // Each look that finds the ranks busy or all arrived grants a whole timeout more (a busy
      // rank then still has to compute its way to this collective).
      if (std::chrono::duration<double>(now - p.started).count() < o.busy_timeout_s() && others_busy(p)) {
        deadline = Clock::now() + millis(o.timeout_s());
        seen_busy = true;
        continue;
      }
      if (p.work->isCompleted()) continue;  // it finished while the heartbeats were read
      if (seen_busy && !last_look) {        // a rank that stopped being busy while we looked: a timeout to arrive
        last_look = true;
        deadline = Clock::now() + millis(o.timeout_s());
        continue;
      }
      fail(p, "no answer within the timeout");
    }
    stats.wait_s += std::chrono::duration<double>(Clock::now() - t0).count();
  }

  template <typename Start>
  Handle start(const std::string& what, int64_t bytes, Start&& fn) {
    try {
      return launch(fn(), what, bytes);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      Pending p;
      p.what = what, p.seq = seq + 1, p.started = Clock::now();
      fail(p, e.what());
    }
  }
};

Communicator::Communicator(DistributedOptions options, c10::Device device) : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.o = std::move(options);
  m.device = device;
  const auto& o = m.o;
  MTREC_CHECK(o.world_size() >= 1 && o.rank() >= 0 && o.rank() < o.world_size(), "distributed: rank ", o.rank(),
              " outside world size ", o.world_size());
  MTREC_CHECK(o.timeout_s() > 0, "distributed: timeout_s must be > 0, got ", o.timeout_s());
  MTREC_CHECK(o.bucket_bytes() >= 1024, "distributed: bucket_bytes must be >= 1024, got ", o.bucket_bytes());
  MTREC_CHECK(o.sparse_exchange() == "auto" || o.sparse_exchange() == "gather" || o.sparse_exchange() == "dense",
              "distributed: unknown sparse_exchange '", o.sparse_exchange(), "' (expected auto|gather|dense)");
  MTREC_CHECK(o.backend() == "auto" || o.backend() == "gloo" || o.backend() == "nccl", "distributed: unknown backend '",
              o.backend(), "' (expected auto|gloo|nccl)");
  const bool want_nccl = o.backend() == "nccl" || (o.backend() == "auto" && device.is_cuda() && MTREC_HAVE_NCCL);
  MTREC_CHECK(!want_nccl || (MTREC_HAVE_NCCL && device.is_cuda()),
              "distributed: backend nccl needs a CUDA device and a "
              "LibTorch built with NCCL (this one: ",
              MTREC_HAVE_NCCL ? "has NCCL" : "no NCCL", ", device ", device.str(), ")");
  try {
    // Ranks start seconds apart (loading LibTorch, the data): the rendezvous waits at least a minute.
    m.store = m.connect(o.rank() == 0 && !o.agent_store(), std::max(60.0, o.timeout_s()));
  } catch (const std::exception& e) {
    MTREC_CHECK(false, "distributed: rank ", o.rank(), " could not reach the rendezvous store at ", m.where(),
                " within ", std::max(60.0, o.timeout_s()), " s (",
                o.rank() == 0 && !o.agent_store() ? "is the port free?" : "is rank 0 running?", "): ", e.what());
  }
  try {  // where this rank runs, for the others' diagnosis
    const std::string v = Impl::host_name() + " " + std::to_string(long(::getpid()));
    m.store->set("where/" + std::to_string(o.rank()), std::vector<uint8_t>(v.begin(), v.end()));
  } catch (const std::exception&) {
  }
  try {
    if (want_nccl) {
#if MTREC_HAVE_NCCL
      // wait() must block (and time out) for a hung rank to be found: the variable's two spellings.
      ::setenv("NCCL_BLOCKING_WAIT", "1", 0);
      ::setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = millis(o.timeout_s());
      m.nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(m.store, o.rank(), o.world_size(), opts);
      m.backend = "nccl";
#endif
    } else {
#if !MTREC_HAVE_GLOO
      MTREC_CHECK(false,
                  "distributed: this mtrec was built without Gloo's headers (Debian: libgloo-dev), so it has "
                  "no CPU process group");
#else
      auto opts = c10d::ProcessGroupGloo::Options::create(millis(std::max(o.timeout_s(), o.busy_timeout_s())));
      const std::string iface = env_str("GLOO_SOCKET_IFNAME", "");
      const bool loopback = o.master_addr() == "localhost" || o.master_addr().rfind("127.", 0) == 0;
      opts->devices.push_back(!iface.empty() ? c10d::ProcessGroupGloo::createDeviceForInterface(iface)
                              : loopback     ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                             : c10d::ProcessGroupGloo::createDefaultDevice());
      opts->threads = 2;
      m.gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(m.store, o.rank(), o.world_size(), opts);
      m.backend = "gloo";
#endif
    }
  } catch (const std::exception& e) {
    MTREC_CHECK(false, "distributed: rank ", o.rank(), " of ", o.world_size(), " could not join the process group at ",
                m.where(), " within ", o.timeout_s(), " s (did every rank start?): ", e.what());
  }
  try {  // every rank wrote its place before joining the group, which has now formed
    for (int r = 0; r < o.world_size(); ++r) {
      auto v = m.store->get("where/" + std::to_string(r));
      std::istringstream in(std::string(v.begin(), v.end()));
      std::pair<std::string, long> w;
      in >> w.first >> w.second;
      m.where_ranks.push_back(w);
    }
  } catch (const std::exception&) {
    m.where_ranks.clear();
  }
  m.start_heartbeat();
  log_info("distributed: rank {} of {} joined ({} at {}, timeout {} s)", o.rank(), o.world_size(), m.backend, m.where(),
           o.timeout_s());
}

Communicator::~Communicator() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->heartbeat.joinable()) impl_->heartbeat.join();
  // After a failure Gloo's threads may sit in a receive from the dead or hung rank until its own
  // (busy) timeout, and the group's destructor would join them: leave it to the process's end.
  if (impl_->broken) {
#if MTREC_HAVE_GLOO
    (void)impl_->gloo.release();
#endif
#if MTREC_HAVE_NCCL
    (void)impl_->nccl.release();
#endif
  }
}

Communicator::Busy::Busy(Communicator* comm, std::string what) : comm_(comm) {
  if (!comm_) return;
  {
    std::lock_guard<std::mutex> lock(comm_->impl_->mu);
    if (comm_->impl_->busy.load() == 0) comm_->impl_->busy_what = std::move(what);
    ++comm_->impl_->busy;
    comm_->impl_->wake = true;
  }
  comm_->impl_->cv.notify_all();  // say so now, not at the next beat
}

Communicator::Busy::~Busy() {
  if (comm_) --comm_->impl_->busy;
}

bool Communicator::broken() const { return impl_->broken; }
int Communicator::rank() const { return impl_->o.rank(); }
int Communicator::world_size() const { return impl_->o.world_size(); }
const DistributedOptions& Communicator::options() const { return impl_->o; }
c10::Device Communicator::device() const { return impl_->device; }
std::string Communicator::backend() const { return impl_->backend; }
CommStats& Communicator::stats() { return impl_->stats; }

Communicator::Handle Communicator::all_reduce_async(at::Tensor tensor, const std::string& what) {
  MTREC_CHECK(tensor.is_contiguous(), "all_reduce (", what, "): the tensor must be contiguous");
  const int64_t bytes = tensor.numel() * int64_t(tensor.element_size());
  return impl_->start(what, bytes, [&] {
    std::vector<at::Tensor> v{tensor};
    return impl_->call([&](auto& pg) { return pg.allreduce(v); });
  });
}

void Communicator::wait(const Handle& h) {
  MTREC_CHECK(h != nullptr, "Communicator::wait: null handle");
  impl_->wait(*h);
}

std::vector<at::Tensor> Communicator::all_gather(const at::Tensor& tensor, const std::string& what) {
  const int W = world_size();
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < W; ++r) out[0].push_back(torch::empty_like(tensor));
  std::vector<at::Tensor> in{tensor.contiguous()};
  auto h = impl_->start(what, tensor.numel() * int64_t(tensor.element_size()),
                        [&] { return impl_->call([&](auto& pg) { return pg.allgather(out, in); }); });
  wait(h);
  return out[0];
}

void Communicator::broadcast(std::vector<at::Tensor>& tensors, int root, const std::string& what) {
  for (auto& t : tensors) {
    MTREC_CHECK(t.is_contiguous(), "broadcast (", what, "): tensors must be contiguous");
    std::vector<at::Tensor> v{t};
    c10d::BroadcastOptions bo;
    bo.rootRank = root;
    wait(impl_->start(what, t.numel() * int64_t(t.element_size()),
                      [&] { return impl_->call([&](auto& pg) { return pg.broadcast(v, bo); }); }));
  }
}

void Communicator::broadcast_bytes(std::string& bytes, int root, const std::string& what) {
  at::Tensor n = torch::tensor({int64_t(bytes.size())}, torch::kLong).to(device());
  std::vector<at::Tensor> v{n};
  broadcast(v, root, what + " (size)");
  const int64_t size = v[0].cpu().item<int64_t>();
  at::Tensor data = rank() == root ? torch::from_blob(bytes.data(), {int64_t(bytes.size())}, torch::kUInt8).clone()
                                   : torch::empty({size}, torch::kUInt8);
  std::vector<at::Tensor> d{data.to(device())};
  if (size > 0) broadcast(d, root, what);
  at::Tensor host = d[0].cpu().contiguous();
  bytes.assign(reinterpret_cast<const char*>(host.data_ptr<uint8_t>()), size_t(size));
}

std::vector<double> Communicator::all_reduce_sum(std::vector<double> values, const std::string& what) {
  if (values.empty()) return values;
  at::Tensor t = torch::tensor(values, torch::kDouble).to(device());
  all_reduce(t, what);
  at::Tensor host = t.cpu().contiguous();
  std::copy(host.data_ptr<double>(), host.data_ptr<double>() + host.numel(), values.begin());
  return values;
}

void Communicator::barrier(const std::string& what) {
  // An all-reduce of one number: its failure is diagnosed like any other collective.
  all_reduce_sum({1.0}, what);
}

std::function<void(std::vector<double>&)> sum_over_ranks(std::shared_ptr<Communicator> comm) {
  MTREC_CHECK(comm != nullptr, "sum_over_ranks: null communicator");
  return [comm](std::vector<double>& v) { v = comm->all_reduce_sum(std::move(v), "all-reduce of evaluation sums"); };
}

// ---------------------------------------------------------------------------------------------
// DataParallel

struct DataParallel::Impl {
  std::shared_ptr<Communicator> comm;
  struct Slot {
    at::Tensor param;
    int64_t offset = 0, numel = 0;
    size_t flag = 0;  // index of its flag in the bucket's flag region
    bool in = false;  // its gradient is in the buffer for this exchange
  };
  struct Bucket {
    std::vector<size_t> slots;
    at::Tensor buffer;  // [Σ numel + slots] : gradients, then one flag per parameter
    int64_t data = 0;   // elements before the flags
    int64_t pending = 0;
    Communicator::Handle handle;
  };
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  std::vector<size_t> bucket_of;  // per slot
  std::vector<at::Tensor> sparse;
  std::vector<std::pair<at::Tensor, unsigned>> hooks;  // removed with this object: the parameters outlive it
  size_t next_launch = 0;
  bool armed = false;
  std::mutex mu;  // hooks may run on autograd's device threads (CUDA)

  void fill(Slot& s, const at::Tensor& grad) {
    Bucket& b = buckets[bucket_of[size_t(&s - slots.data())]];
    b.buffer.narrow(0, s.offset, s.numel).copy_(grad.reshape({-1}));
    b.buffer[b.data + int64_t(s.flag)] = 1;
    s.in = true;
  }
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
      Bucket& b = buckets[next_launch];
      b.handle = comm->all_reduce_async(b.buffer, "all-reduce of gradient bucket " + std::to_string(next_launch));
      ++next_launch;
    }
  }
  // Collectives still in flight (an exception left an exchange half done): finished before the
  // buffers are reused or freed, errors ignored (the exception that interrupted is the report).
  void drain() {
    for (auto& b : buckets)
      if (b.handle && !comm->broken()) {  // a broken group's collectives may never end
        try {
          comm->wait(b.handle);
        } catch (const std::exception&) {
        }
      }
    for (auto& b : buckets) b.handle.reset();
  }
  void on_grad(size_t i, const at::Tensor& g) {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed) return;
    Slot& s = slots[i];
    if (s.in) return;
    // The hook sees this backward's gradient before it is accumulated into .grad (which holds
    // earlier micro-batches' sum).
    const at::Tensor& acc = s.param.grad();
    fill(s, acc.defined() ? acc + g : g);
    Bucket& b = buckets[bucket_of[i]];
    --b.pending;
    launch_ready();
  }
};

DataParallel::DataParallel(std::shared_ptr<Communicator> comm, std::vector<at::Tensor> dense,
                           std::vector<at::Tensor> sparse, std::vector<at::Tensor> extra)
    : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  MTREC_CHECK(comm != nullptr, "DataParallel: null communicator");
  m.comm = std::move(comm);
  m.sparse = std::move(sparse);
  const int64_t cap = m.comm->options().bucket_bytes();
  // Backward produces the last layers' gradients first: buckets in reverse parameter order, so
  // the first bucket fills first. Learned loss weights (extra) get theirs after backward: last.
  std::vector<at::Tensor> order(dense.rbegin(), dense.rend());
  const size_t hooked = order.size();
  order.insert(order.end(), extra.begin(), extra.end());
  auto open = [&](const at::Tensor& like) {
    m.buckets.emplace_back();
    m.buckets.back().buffer = like;  // type and device only, until sized below
  };
  for (size_t i = 0; i < order.size(); ++i) {
    const at::Tensor& p = order[i];
    const bool new_bucket =
        m.buckets.empty() || i == hooked || m.buckets.back().buffer.scalar_type() != p.scalar_type() ||
        m.buckets.back().buffer.device() != p.device() || m.buckets.back().data * int64_t(p.element_size()) >= cap;
    if (new_bucket) open(p);
    Impl::Bucket& b = m.buckets.back();
    Impl::Slot s;
    s.param = p;
    s.offset = b.data;
    s.numel = p.numel();
    s.flag = b.slots.size();
    b.data += p.numel();
    b.slots.push_back(m.slots.size());
    m.bucket_of.push_back(m.buckets.size() - 1);
    m.slots.push_back(s);
  }
  for (auto& b : m.buckets)
    b.buffer = torch::zeros({b.data + int64_t(b.slots.size())}, b.buffer.options().requires_grad(false));
  if (m.comm->options().overlap())
    for (size_t i = 0; i < hooked; ++i) {
      Impl* self = impl_.get();
      const unsigned h = m.slots[i].param.register_hook([self, i](const at::Tensor& g) { self->on_grad(i, g); });
      m.hooks.emplace_back(m.slots[i].param, h);
    }
  for (auto& b : m.buckets) b.pending = int64_t(b.slots.size());
}

DataParallel::~DataParallel() {
  for (auto& [param, h] : impl_->hooks) param.remove_hook(h);
  impl_->drain();
}

int64_t DataParallel::buckets() const { return int64_t(impl_->buckets.size()); }

void DataParallel::arm(bool exchange) {
  auto& m = *impl_;
  m.drain();
  std::lock_guard<std::mutex> lock(m.mu);
  m.armed = exchange;
  if (!exchange) return;
  m.next_launch = 0;
  for (auto& b : m.buckets) {
    b.buffer.zero_();
    b.pending = int64_t(b.slots.size());
    b.handle.reset();
  }
  for (auto& s : m.slots) s.in = false;
}

void DataParallel::synchronize() {
  auto& m = *impl_;
  Communicator& comm = *m.comm;
  const int W = comm.world_size();
  const double wait0 = comm.stats().wait_s;
  Step st;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    MTREC_CHECK(m.armed, "DataParallel::synchronize without arm(true) before backward");
    // Parameters whose hook did not fire (no gradient this backward, no overlap, or extra ones)
    // go in now, in bucket order.
    for (size_t i = 0; i < m.slots.size(); ++i) {
      auto& s = m.slots[i];
      if (s.in) continue;
      if (s.param.grad().defined()) m.fill(s, s.param.grad());
      s.in = true;
      --m.buckets[m.bucket_of[i]].pending;
    }
    m.launch_ready();
    m.armed = false;
  }
  for (auto& b : m.buckets) st.dense_bytes += b.buffer.numel() * int64_t(b.buffer.element_size());

  // Sparse rows: every rank's touched-row count per table decides the exchange.
  const size_t T = m.sparse.size();
  if (T > 0) {
    std::vector<at::Tensor> idx(T), val(T);
    at::Tensor counts = torch::zeros({int64_t(T)}, torch::kLong);
    for (size_t t = 0; t < T; ++t) {
      const at::Tensor& p = m.sparse[t];
      at::Tensor g = p.grad();
      if (!g.defined()) {
        idx[t] = torch::empty({0}, p.options().dtype(torch::kLong));
        val[t] = torch::empty({0, p.size(1)}, p.options().requires_grad(false));
      } else if (g.is_sparse()) {
        g = g.coalesce();
        idx[t] = g.indices().select(0, 0).contiguous();
        val[t] = g.values().contiguous();
      } else {
        idx[t] = torch::arange(p.size(0), p.options().dtype(torch::kLong));
        val[t] = g.contiguous();
      }
      counts[int64_t(t)] = idx[t].size(0);
    }
    std::vector<at::Tensor> all_counts = comm.all_gather(counts.to(comm.device()), "all-gather of sparse row counts");
    at::Tensor cs = torch::stack(all_counts).cpu();  // [W, T]
    st.sparse_bytes += counts.numel() * 8;
    const std::string& mode = comm.options().sparse_exchange();
    for (size_t t = 0; t < T; ++t) {
      const at::Tensor& p = m.sparse[t];
      const int64_t rows = p.size(0), d = p.size(1);
      const int64_t kmax = cs.select(1, int64_t(t)).max().item<int64_t>();
      if (kmax == 0) {
        p.mutable_grad() = at::Tensor();
        continue;
      }
      // Bytes each rank receives: all-gather (W-1)·kmax rows; ring all-reduce 2(W-1)/W of the table.
      const double gather_cost = double(W - 1) * double(kmax) * double(d + 1);
      const double dense_cost = 2.0 * double(W - 1) / double(W) * double(rows) * double(d + 1);
      const bool gather = mode == "gather" || (mode == "auto" && gather_cost <= dense_cost);
      if (gather) {
        ++st.sparse_gathered;
        const int64_t k = idx[t].size(0);
        at::Tensor pi = torch::zeros({kmax}, idx[t].options());
        at::Tensor pv = torch::zeros({kmax, d}, val[t].options());
        if (k > 0) pi.narrow(0, 0, k).copy_(idx[t]), pv.narrow(0, 0, k).copy_(val[t]);
        auto gi = comm.all_gather(pi, "all-gather of embedding rows (indices)");
        auto gv = comm.all_gather(pv, "all-gather of embedding rows (values)");
        st.sparse_bytes += pi.numel() * 8 + pv.numel() * int64_t(pv.element_size());
        std::vector<at::Tensor> is, vs;
        for (int r = 0; r < W; ++r) {
          const int64_t kr = cs[r][int64_t(t)].item<int64_t>();
          is.push_back(gi[size_t(r)].narrow(0, 0, kr));
          vs.push_back(gv[size_t(r)].narrow(0, 0, kr));
        }
        p.mutable_grad() = torch::sparse_coo_tensor(torch::cat(is).unsqueeze(0), torch::cat(vs), {rows, d}).coalesce();
      } else {
        ++st.sparse_dense;
        at::Tensor table = torch::zeros({rows, d + 1}, val[t].options());
        if (idx[t].size(0) > 0)
          table.index_add_(0, idx[t], torch::cat({val[t], torch::ones({idx[t].size(0), 1}, val[t].options())}, 1));
        comm.all_reduce(table, "all-reduce of an embedding table's gradient");
        st.sparse_bytes += table.numel() * int64_t(table.element_size());
        at::Tensor touched = table.select(1, d).gt(0).nonzero().select(1, 0);
        p.mutable_grad() =
            torch::sparse_coo_tensor(touched.unsqueeze(0), table.index_select(0, touched).narrow(1, 0, d), {rows, d})
                ._coalesced_(true);
      }
    }
  }

  // Dense buckets: wait in launch order, then each parameter's gradient is its slice of the sum.
  for (auto& b : m.buckets) {
    comm.wait(b.handle);
    b.handle.reset();
    at::Tensor flags = b.buffer.narrow(0, b.data, int64_t(b.slots.size())).cpu();
    for (size_t j = 0; j < b.slots.size(); ++j) {
      auto& s = m.slots[b.slots[j]];
      if (flags[int64_t(j)].item<double>() > 0)
        s.param.mutable_grad() = b.buffer.narrow(0, s.offset, s.numel).view_as(s.param);
      else
        s.param.mutable_grad() = at::Tensor();
    }
  }
  st.wait_s = comm.stats().wait_s - wait0;
  last_ = st;
}

// ---------------------------------------------------------------------------------------------
// Local launcher

namespace {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  MTREC_CHECK(fd >= 0, "launch: cannot open a socket to find a free port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  MTREC_CHECK(ok, "launch: cannot find a free loopback port");
  return ntohs(a.sin_port);
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  return "ended (status " + std::to_string(status) + ")";
}

}  // namespace

namespace {
volatile std::sig_atomic_t g_forward = 0;  // a signal the launcher got, for its ranks
void remember_signal(int sig) { g_forward = sig; }
}  // namespace

int launch_local_workers(int nproc, const std::vector<std::string>& argv, int port, double grace_s) {
  MTREC_CHECK(nproc >= 1 && nproc <= 256, "launch: --nproc must be in [1, 256], got ", nproc);
  MTREC_CHECK(!argv.empty(), "launch: no program to run");
  if (port <= 0) port = free_port();
  std::vector<pid_t> pids(size_t(nproc), -1);
  auto kill_all = [&](int sig) {
    for (pid_t p : pids)
      if (p > 0) ::kill(p, sig);
  };
  auto reap_all = [&] {
    for (pid_t& p : pids)
      if (p > 0) ::waitpid(p, nullptr, 0), p = -1;
  };
  const pid_t parent = ::getpid();
  for (int r = 0; r < nproc; ++r) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string kv = *e;
      const std::string key = kv.substr(0, kv.find('='));
      if (key != "RANK" && key != "WORLD_SIZE" && key != "LOCAL_RANK" && key != "LOCAL_WORLD_SIZE" &&
          key != "MASTER_ADDR" && key != "MASTER_PORT" && key != "TORCHELASTIC_USE_AGENT_STORE")
        env.push_back(kv);
    }
    for (const auto& kv :
         {std::make_pair("RANK", r), std::make_pair("LOCAL_RANK", r), std::make_pair("WORLD_SIZE", nproc),
          std::make_pair("LOCAL_WORLD_SIZE", nproc), std::make_pair("MASTER_PORT", port)})
      env.push_back(std::string(kv.first) + "=" + std::to_string(kv.second));
    env.push_back("MASTER_ADDR=127.0.0.1");
    std::vector<char*> av, ev;
    for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    for (const auto& e : env) ev.push_back(const_cast<char*>(e.c_str()));
    ev.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
      kill_all(SIGKILL);
      reap_all();
      MTREC_CHECK(false, "launch: fork failed for rank ", r, " of ", nproc, ": ", std::strerror(errno));
    }
    if (pid == 0) {
      // A rank never outlives its launcher (async-signal-safe calls only until execve).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      ::execve(av[0], av.data(), ev.data());
      ::_exit(127);
    }
    pids[size_t(r)] = pid;
  }
  // SIGINT / SIGTERM to the launcher go to its ranks, which then end as they would alone.
  struct sigaction sa {
  }, old_int{}, old_term{};
  sa.sa_handler = remember_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  g_forward = 0;
  int result = 0, first_failed = -1;
  std::string first_how;
  int alive = nproc;
  Clock::time_point failed_at;
  bool terminated = false;
  while (alive > 0) {
    if (g_forward != 0) {
      log_error("launch: got signal {}: passing it to the ranks", int(g_forward));
      kill_all(int(g_forward));
      g_forward = 0;
    }
    bool reaped = false;
    for (int r = 0; r < nproc; ++r) {
      if (pids[size_t(r)] <= 0) continue;
      int status = 0;
      if (::waitpid(pids[size_t(r)], &status, WNOHANG) != pids[size_t(r)]) continue;
      reaped = true;
      pids[size_t(r)] = -1;
      --alive;
      const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (!ok && first_failed < 0) {
        first_failed = r;
        first_how = describe(status);
        result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        failed_at = Clock::now();
        if (alive > 0)
          log_error("launch: rank {} of {} {}; waiting up to {} s for the other ranks to stop", r, nproc, first_how,
                    grace_s);
      } else if (!ok) {
        log_error("launch: rank {} of {} {}", r, nproc, describe(status));
      }
    }
    if (reaped) continue;
    if (first_failed >= 0 && !terminated && std::chrono::duration<double>(Clock::now() - failed_at).count() > grace_s) {
      for (int r = 0; r < nproc; ++r)
        if (pids[size_t(r)] > 0) {
          log_error("launch: rank {} still running {} s after rank {} failed: killing it", r, grace_s, first_failed);
          ::kill(pids[size_t(r)], SIGKILL);  // a hung (even stopped) rank goes too
        }
      terminated = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  if (first_failed >= 0) log_error("launch: the run failed: rank {} of {} {} first", first_failed, nproc, first_how);
  return result;
}

}  // namespace mtrec
