#pragma once
// Test programs that run as several processes: a test re-runs its own executable with
// MTREC_TEST_WORKER=<name> (e.g. through mtrec::launch_local_workers), and main() then runs the
// worker registered under that name instead of the tests; its return value is the exit status.
//   MTREC_TEST_WORKER_FN(data_parallel) { ... return 0; }
#include <cstdlib>
#include <functional>
#include <map>
#include <string>

namespace mtrec::test {

inline std::map<std::string, std::function<int()>>& workers() {
  static std::map<std::string, std::function<int()>> w;
  return w;
}
struct RegisterWorker {
  RegisterWorker(const std::string& name, std::function<int()> fn) { workers()[name] = std::move(fn); }
};

}  // namespace mtrec::test

#define MTREC_TEST_WORKER_FN(name)                                                                    \
  static int mtrec_test_worker_##name();                                                              \
  static ::mtrec::test::RegisterWorker mtrec_test_worker_reg_##name(#name, mtrec_test_worker_##name); \
  static int mtrec_test_worker_##name()
