// A minimal application linking an installed mtrec: generates a small synthetic world, checks
// it and prints its statistics.
#include <mtrec/core/check.h>
#include <mtrec/data/schema.h>
#include <mtrec/data/split.h>
#include <mtrec/data/synthetic.h>

#include <cstdio>

int main() {
  mtrec::SyntheticWorld w =
      mtrec::generate_world(mtrec::SyntheticOptions().users(200).items(100).interactions(5000).seed(7));
  w.data.validate();
  auto problems = mtrec::check_world(w);
  auto stats = mtrec::compute_stats(w.data);
  auto split = mtrec::leave_one_out_split(w.data.interactions, 7);
  std::printf(
      "consumer: mtrec %s linked; synthetic world: %lld users, %lld items, %lld interactions, "
      "%lld scenarios, %lld behaviours; leave-one-out test rows %zu; %zu problem(s)\n",
      MTREC_VERSION, static_cast<long long>(stats.users), static_cast<long long>(stats.items),
      static_cast<long long>(stats.interactions), static_cast<long long>(stats.scenarios),
      static_cast<long long>(stats.behaviors), split.test.size(), problems.size());
  std::printf("consumer: item 0 \"%s\"\n", w.data.item_text.get(0, "title").c_str());
  return problems.empty() && stats.interactions > 0 && split.test.size() == 200 ? 0 : 1;
}
