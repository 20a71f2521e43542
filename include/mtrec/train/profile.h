#pragma once
// Charges backward time to the forward phase that built the graph (core/profile.h): while a
// BackwardAttribution lives, each autograd node's backward run is added to the phase
// "backward:<path>", where <path> is the profile path that was current when the forward op that
// created the node ran (matched by the autograd sequence number). Nodes without a forward phase
// (parameters' gradient accumulation, ops outside every scope) go to "backward:(unattributed)".
// A profiling aid for benchmarks: every op then runs a callback.
//
//   mtrec::Profile::enable(true);
//   mtrec::BackwardAttribution attribution;
//   trainer.train();   // the trainer's and the model's MTREC_PROFILE scopes
//   mtrec::Profile::totals();   // "step/forward/text encoder" and "backward:step/forward/text encoder", ...
#include <cstdint>

namespace mtrec {

class BackwardAttribution {
 public:
  BackwardAttribution();
  ~BackwardAttribution();
  BackwardAttribution(const BackwardAttribution&) = delete;
  BackwardAttribution& operator=(const BackwardAttribution&) = delete;

 private:
  uint64_t handle_ = 0;
};

}  // namespace mtrec
