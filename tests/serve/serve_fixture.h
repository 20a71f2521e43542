#pragma once
// Checkpoint files of the tiny joint model (test_joint.h) for the serving tests: v1 as trained
// and v2, the same model with its item embeddings scaled by 1.5 (another version with other
// answers, for hot swaps). Written once per test process; do not modify them.
#include <torch/torch.h>

#include <memory>
#include <string>

#include "mtrec/nn/checkpoint.h"
#include "test_joint.h"
#include "test_util.h"

namespace mtrec::test {

struct ServeCheckpoints {
  TempDir dir;
  std::string v1, v2;
};

inline const ServeCheckpoints& serve_checkpoints() {
  static const std::unique_ptr<ServeCheckpoints> c = [] {
    OneThread one;
    auto out = std::make_unique<ServeCheckpoints>();
    const TinyJoint& tj = trained_tiny_joint();
    JointFit fit = tj.fit;  // to_checkpoint is not const
    out->v1 = out->dir.path("v1.ckpt");
    out->v2 = out->dir.path("v2.ckpt");
    save_checkpoint(out->v1, fit.to_checkpoint(tj.world.data));
    JointBundle other = joint_from_checkpoint(fit.to_checkpoint(tj.world.data), "cpu");
    {
      torch::NoGradGuard g;
      other.model->item_emb->weight.mul_(1.5);
    }
    other.serving = fit.serving;
    save_checkpoint(out->v2, other.to_checkpoint(tj.world.data));
    return out;
  }();
  return *c;
}

}  // namespace mtrec::test
