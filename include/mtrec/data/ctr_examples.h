#pragma once
// Click-through examples: labelled (user, item, scenario) triples, the positives with sampled
// negatives, and the one pool CTR negatives come from (protocol C, eval/protocols.h; the CTR
// head, tasks/ctr.h). Plain C++: evaluation builds its test sets without LibTorch.
//   mtrec::NegativeSampler all = mtrec::ctr_negative_sampler(ds.interactions, ds.num_users(), ds.num_items(), 7);
//   mtrec::CtrExamples test = mtrec::sample_ctr_examples(test_pos, all, 1);
#include <cstdint>
#include <vector>

#include "mtrec/data/sampler.h"
#include "mtrec/data/schema.h"

namespace mtrec {

/// Labelled (user, item, scenario) triples.
struct CtrExamples {
  std::vector<int32_t> user, item, scenario;
  std::vector<float> label;
  size_t size() const { return user.size(); }
};

/// Every row of `positives` with label 1, plus `ratio` items per row drawn from `sampler`
/// (items the sampler's user has not interacted with) with label 0 and the row's scenario.
CtrExamples sample_ctr_examples(const Interactions& positives, NegativeSampler& sampler, int ratio);

/// The one pool CTR negatives come from, in training and in test alike: for user u, the items
/// u has no row for in `interactions`. Every row counts, not only positives (on MovieLens an
/// item rated 2 stars is an observed interaction, not an unseen item). Training passes the
/// rows it learns from (fit_ctr's positives and `seen`); a test set passes every row of
/// the data set, so its negatives are unseen in training and test alike.
NegativeSampler ctr_negative_sampler(const Interactions& interactions, int32_t num_users, int32_t num_items,
                                     uint64_t seed);

}  // namespace mtrec
