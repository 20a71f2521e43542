// The C++ example of README.md, built (not run) by `./bootstrap.sh test` against the installed
// mtrec so that the README cannot drift from the API.
#include <mtrec/data/movielens.h>
#include <mtrec/tasks/rating.h>
#include <mtrec/nn/checkpoint.h>

#include <cstdio>

int main() {
  // u1.base / u1.test, with ID maps shared by both
  mtrec::MovieLensFold fold = mtrec::read_movielens_100k_fold("data/ml-100k", 1);
  mtrec::Interactions train = fold.data.interactions.subset(fold.split.train);
  mtrec::Interactions test = fold.data.interactions.subset(fold.split.test);
  mtrec::RatingTask mf = mtrec::RatingTask::fit(train, fold.data.num_users(), fold.data.num_items(),
                                                mtrec::RatingTrainOptions().sweeps(200));  // Bayesian MF
  mtrec::RatingMetrics m = mf.evaluate(test);
  std::printf("RMSE %.4f  MAE %.4f\n", m.rmse, m.mae);
  mtrec::save_checkpoint("mf.ckpt", mf.to_checkpoint(fold.data.users, fold.data.items));   // atomic, checksummed
}
