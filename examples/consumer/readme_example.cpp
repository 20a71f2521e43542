// The C++ example of README.md, built (not run) by `./bootstrap.sh test` against the installed
// mtrec so that the README cannot drift from the API.
#include <mtrec/data/movielens.h>
#include <mtrec/data/split.h>
#include <mtrec/nn/checkpoint.h>
#include <mtrec/train/fit.h>

#include <cstdio>

int main() {
  // u1.base / u1.test, with ID maps shared by both
  mtrec::MovieLensFold fold = mtrec::read_movielens_100k_fold("data/ml-100k", 1);
  // one validation set (5% of u1.base) for every model, as protocol M asks
  mtrec::Split split = mtrec::with_validation(fold.split, 0.05, /*seed=*/42);
  const mtrec::Interactions& x = fold.data.interactions;
  mtrec::Interactions train = x.subset(split.train), valid = x.subset(split.valid), test = x.subset(split.test);
  // SGD biased MF on the training engine: sparse row updates, early stopping on `valid`,
  // checkpoints and a report in runs/mf (resume with .resume("runs/mf/select/last.ckpt"))
  mtrec::RatingTask mf = mtrec::fit_rating(train, valid, fold.data.num_users(), fold.data.num_items(),
                                           mtrec::RatingTrainOptions().solver("sgd"),
                                           mtrec::RunOptions().out_dir("runs/mf").id_maps(fold.data));
  mtrec::RatingMetrics m = mf.evaluate(test);
  std::printf("RMSE %.4f  MAE %.4f\n", m.rmse, m.mae);
  mtrec::save_checkpoint("mf.ckpt", mf.to_checkpoint(fold.data.users, fold.data.items));   // atomic, checksummed
}
