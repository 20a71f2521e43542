#pragma once
// A tiny synthetic world and a tiny joint model for the tests of the unified model and of
// serving: trained in a few seconds on one thread, once per test process (trained_tiny_joint).
#include <memory>

#include "mtrec/eval/protocols.h"
#include "mtrec/data/synthetic.h"
#include "mtrec/train/fit_joint.h"
#include "test_torch.h"

namespace mtrec::test {

inline SyntheticWorld small_world(int users, int items, int64_t interactions) {
  return generate_world(SyntheticOptions().users(users).items(items).interactions(interactions).seed(5).threads(1));
}

inline JointTrainOptions tiny_joint() {
  return JointTrainOptions()
      .dim(16)
      .text_dim(16)
      .text_layers(1)
      .text_heads(2)
      .text_max_len(16)
      .vocab_size(150)
      .expert_hidden({16, 16})
      .experts(2)
      .max_history(10)
      .mlm_texts(8)
      .epochs(1)
      .patience(0)
      .select_per_task(false)  // one state for every head; the selection's own tests turn it on
      .trainer(TrainerOptions().epochs(1).batch_size(256).lr(3e-3).seed(7).device("cpu"));
}

/// 60 users x 40 items x 3000 exposures (three scenarios, contexts, profiles), split 80/10/10
/// by time, and the tiny joint model fitted on it (2 epochs). Shared: do not modify.
struct TinyJoint {
  SyntheticWorld world;
  Split split;
  Interactions known;  // train + valid rows: the histories the checkpoint stores
  JointFit fit;
};
inline const TinyJoint& trained_tiny_joint() {
  static const std::unique_ptr<TinyJoint> tj = [] {
    OneThread one;
    auto t = std::make_unique<TinyJoint>();
    t->world = small_world(60, 40, 3000);
    t->split = protocol_split(t->world.data.interactions, "temporal", 42);
    t->known = t->world.data.interactions.subset(known_rows(t->split));
    JointTrainOptions o = tiny_joint();
    o.trainer().epochs(2);
    t->fit = fit_joint(t->world.data, t->split, o, {});
    return t;
  }();
  return *tj;
}

}  // namespace mtrec::test
