#include "mtrec/train/profile.h"

#include <ATen/record_function.h>

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

#include "mtrec/core/profile.h"

namespace mtrec {
namespace {

std::mutex g_mutex;
std::unordered_map<int64_t, std::string>& forward_phase() {  // sequence number -> forward path
  static std::unordered_map<int64_t, std::string> m;
  return m;
}

struct Started : at::ObserverContext {
  std::chrono::steady_clock::time_point t;
};

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  if (fn.scope() == at::RecordScope::FUNCTION) {
    const std::string& path = Profile::current_path();
    if (fn.seqNr() >= 0 && !path.empty()) {
      std::lock_guard<std::mutex> lock(g_mutex);
      forward_phase()[fn.seqNr()] = path;
    }
    return nullptr;
  }
  Profile::sync();
  auto c = std::make_unique<Started>();
  c->t = std::chrono::steady_clock::now();
  return c;
}

void on_end(const at::RecordFunction& fn, at::ObserverContext* ctx) {
  if (fn.scope() != at::RecordScope::BACKWARD_FUNCTION || !ctx) return;
  Profile::sync();
  const double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - static_cast<Started*>(ctx)->t).count();
  std::string path = "backward:(unattributed)";
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = forward_phase().find(fn.seqNr());
    if (it != forward_phase().end()) {
      path = "backward:" + it->second;
      forward_phase().erase(it);
    }
  }
  Profile::add(path, s);
}

}  // namespace

BackwardAttribution::BackwardAttribution() {
  handle_ = at::addGlobalCallback(at::RecordFunctionCallback(&on_start, &on_end)
                                      .needsInputs(false)
                                      .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
}

BackwardAttribution::~BackwardAttribution() {
  at::removeCallback(handle_);
  std::lock_guard<std::mutex> lock(g_mutex);
  forward_phase().clear();
}

}  // namespace mtrec
