#include "mtrec/data/ctr_examples.h"

#include "mtrec/core/check.h"

namespace mtrec {

CtrExamples sample_ctr_examples(const Interactions& positives, NegativeSampler& sampler, int ratio) {
  MTREC_CHECK(ratio >= 0, "negative ratio must be >= 0, got ", ratio);
  CtrExamples ex;
  const size_t n = positives.size() * (1 + static_cast<size_t>(ratio));
  ex.user.reserve(n);
  ex.item.reserve(n);
  ex.scenario.reserve(n);
  ex.label.reserve(n);
  for (size_t k = 0; k < positives.size(); ++k) {
    const int32_t u = positives.user[k], s = positives.scenario.empty() ? 0 : positives.scenario[k];
    ex.user.push_back(u);
    ex.item.push_back(positives.item[k]);
    ex.scenario.push_back(s);
    ex.label.push_back(1.0f);
    if (ratio == 0) continue;
    for (int32_t it : sampler.sample(u, ratio)) {
      ex.user.push_back(u);
      ex.item.push_back(it);
      ex.scenario.push_back(s);
      ex.label.push_back(0.0f);
    }
  }
  return ex;
}

NegativeSampler ctr_negative_sampler(const Interactions& interactions, int32_t num_users, int32_t num_items,
                                     uint64_t seed) {
  return NegativeSampler(interactions, num_users, num_items, NegativeSampler::Kind::Uniform, seed);
}

}  // namespace mtrec
