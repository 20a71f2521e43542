#include <execinfo.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>

#include "mtrec/core/log.h"
#include "mtrec/core/random.h"
#include "test_worker.h"

namespace {
// A crash in a test (or in a library's static initialisation) prints a backtrace instead of a
// bare "SegFault" from ctest.
void print_backtrace(int sig) {
  void* frames[64];
  int n = backtrace(frames, 64);
  const char msg[] = "\n*** fatal signal in mtrec tests; backtrace:\n";
  (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}
__attribute__((constructor(101))) void install_crash_handler() {
  std::signal(SIGSEGV, print_backtrace);
  std::signal(SIGABRT, print_backtrace);
  std::signal(SIGBUS, print_backtrace);
}
}  // namespace

int main(int argc, char** argv) {
  if (const char* name = std::getenv("MTREC_TEST_WORKER")) {
    auto it = mtrec::test::workers().find(name);
    if (it == mtrec::test::workers().end()) return 127;
    mtrec::seed_everything(42);
    return it->second();
  }
  ::testing::InitGoogleTest(&argc, argv);
  mtrec::seed_everything(42);
  return RUN_ALL_TESTS();
}
