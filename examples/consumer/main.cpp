// A minimal application linking an installed mtrec.
#include <mtrec/core/check.h>
#include <mtrec/data/schema.h>

#include <cstdio>

int main() {
  mtrec::Dataset ds;
  ds.interactions.push_back(ds.users.intern("alice"), ds.items.intern("book"));
  ds.validate();
  auto stats = mtrec::compute_stats(ds);
  std::printf("consumer: mtrec %s linked; %lld interaction(s)\n", MTREC_VERSION,
              static_cast<long long>(stats.interactions));
  return stats.interactions == 1 ? 0 : 1;
}
