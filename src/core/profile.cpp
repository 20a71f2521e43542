#include "mtrec/core/profile.h"

#include <atomic>
#include <mutex>

namespace mtrec {
namespace {

std::atomic<bool> g_enabled{false};
std::atomic<void (*)()> g_sync{nullptr};
std::mutex g_mutex;
std::map<std::string, PhaseTotal>& table() {
  static std::map<std::string, PhaseTotal> t;
  return t;
}
thread_local std::string t_path;

}  // namespace

void Profile::enable(bool on) { g_enabled.store(on, std::memory_order_relaxed); }
bool Profile::enabled() { return g_enabled.load(std::memory_order_relaxed); }
void Profile::reset() {
  std::lock_guard<std::mutex> lock(g_mutex);
  table().clear();
}
std::map<std::string, PhaseTotal> Profile::totals() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return table();
}
void Profile::add(const std::string& path, double seconds) {
  std::lock_guard<std::mutex> lock(g_mutex);
  PhaseTotal& t = table()[path];
  t.seconds += seconds;
  ++t.calls;
}
const std::string& Profile::current_path() { return t_path; }
void Profile::set_sync(void (*sync)()) { g_sync.store(sync); }
void Profile::sync() {
  if (auto* f = g_sync.load()) f();
}

ProfileScope::ProfileScope(const char* name) {
  if (!Profile::enabled()) return;
  active_ = true;
  parent_length_ = t_path.size();
  if (!t_path.empty()) t_path += '/';
  t_path += name;
  Profile::sync();
  start_ = std::chrono::steady_clock::now();
}

ProfileScope::~ProfileScope() {
  if (!active_) return;
  Profile::sync();
  Profile::add(t_path, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  t_path.resize(parent_length_);
}

}  // namespace mtrec
