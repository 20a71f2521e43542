// Every model kind through the one model system (model/io.h): train a tiny model, export it with
// its serving data, save, load through load_scoring_model -> the kind's own scores; serve it
// through the Recommender -> the exact top-K of those scores (seen items excluded). And the
// checkpoint errors: each names the file, what it holds and what was expected.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <numeric>

#include "mtrec/cf/knn.h"
#include "mtrec/core/io.h"
#include "mtrec/model/io.h"
#include "mtrec/serve/recommender.h"
#include "mtrec/data/labels.h"
#include "mtrec/train/fit.h"
#include "mtrec/train/fit_dmf.h"
#include "mtrec/train/fit_next_item.h"
#include "test_joint.h"
#include "test_util.h"

namespace mtrec {
namespace {

using test::TinyJoint;

/// One kind's export and its own scorer (what the model says before it is saved).
struct Trained {
  std::string kind;
  Checkpoint export_ck;
  std::function<std::vector<float>(int32_t user, const std::vector<int32_t>& history)> own;  // [num_items]
};

const TinyJoint& world() { return test::trained_tiny_joint(); }

std::vector<int32_t> all_items(int32_t n) {
  std::vector<int32_t> v(size_t(n), 0);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

/// The tiny world's kinds, each fitted in a second or two on one thread.
const std::vector<Trained>& trained_kinds() {
  static const std::vector<Trained> kinds = [] {
    test::OneThread one;
    const TinyJoint& tj = world();
    const Dataset& ds = tj.world.data;
    const auto& x = ds.interactions;
    const int32_t U = ds.num_users(), I = ds.num_items();
    const Interactions train = x.subset(tj.split.train);
    std::vector<Trained> out;

    auto rating = std::make_shared<RatingFit>(
        fit_rating(explicit_ratings(ds, train), {}, U, I, RatingTrainOptions().solver("sgd").epochs(2).dim(8).seed(3)));
    out.push_back({"rating", rating->to_checkpoint(ds.users, ds.items), [rating, I](int32_t u, const auto&) {
                     return rating->predict(std::vector<int32_t>(size_t(I), u), all_items(I));
                   }});

    const Interactions pos = implicit_positives(ds, train);
    auto ctr = std::make_shared<CtrFit>(fit_ctr(pos, {}, U, I, std::max<int32_t>(1, ds.scenarios.size()),
                                                CtrTrainOptions().epochs(1).dim(8).seed(3), pos));
    out.push_back({"ctr", ctr->to_checkpoint(ds.users, ds.items, ds.scenarios), [ctr, I](int32_t u, const auto&) {
                     return ctr->predict(std::vector<int32_t>(size_t(I), u), all_items(I),
                                         std::vector<int32_t>(size_t(I), 0));
                   }});

    auto dmf = std::make_shared<DmfFit>(fit_dmf(pos, {}, U, I, DmfTrainOptions().epochs(1).layers({16, 8}).seed(3)));
    out.push_back({"dmf", dmf->to_checkpoint(ds.users, ds.items),
                   [dmf, I](int32_t u, const auto&) { return dmf->score(u, all_items(I)); }});

    auto seq = std::make_shared<NextItemModel>(NextItemOptions(I).d_model(16).layers(1).max_len(10));
    fit_next_item(*seq, make_next_item_data(pos, U, I, 3), NextItemTrainOptions().epochs(1).seed(3).device("cpu"));
    (*seq)->eval();
    out.push_back({"next_item", next_item_checkpoint(*seq, ds.users, ds.items), [seq](int32_t, const auto& h) {
                     torch::NoGradGuard g;
                     std::vector<const std::vector<int32_t>*> rows = {&h};
                     at::Tensor s = (*seq)->score_next(pack_histories(rows, (*seq)->options.max_len())).contiguous();
                     return std::vector<float>(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
                   }});

    auto knn = std::make_shared<KnnModel>(
        KnnOptions().similarity(KnnSimilarity::Cosine).k(10).shrinkage(0).baseline(false));  // as on --split loo
    Interactions implicit = pos;
    implicit.has_rating = false;
    knn->fit(implicit, U, I);
    out.push_back({"knn", knn_checkpoint(*knn, ds.users, ds.items, true), [knn, I](int32_t u, const auto&) {
                     std::vector<float> s(static_cast<size_t>(I));
                     knn->score(u, all_items(I), s);
                     return s;
                   }});

    auto joint = std::make_shared<JointBundle>(tj.fit);
    out.push_back({"joint", joint->to_checkpoint(ds), [joint](int32_t u, const std::vector<int32_t>& h) {
                     torch::NoGradGuard g;
                     UnifiedModel& m = joint->model;
                     std::vector<const std::vector<int32_t>*> rows = {&h};
                     at::Tensor uv =
                         m->user_vectors(torch::tensor({int64_t(u)}), pack_histories(rows, m->options.max_history()),
                                         m->item_vectors(), {}, {});
                     at::Tensor s = m->next_item_scores(uv).contiguous();
                     return std::vector<float>(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
                   }});
    // What serving needs, as `mtrec train --out` stores it (the joint export has its own).
    const ServingData sd = make_serving_data(ds, tj.known, 42);
    for (auto& t : out)
      if (t.kind != "joint") add_serving_data(t.export_ck, sd);
    return out;
  }();
  return kinds;
}

TEST(ModelIo, EveryKindIsRegisteredAndMtrecTrainWritesOnlyRegisteredKinds) {
  const std::vector<std::string> kinds = model_kinds();
  for (const char* k : {"ctr", "dmf", "joint", "knn", "next_item", "rating"})
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), k), kinds.end()) << k;
  for (const auto& t : trained_kinds()) EXPECT_EQ(t.export_ck.task, t.kind);
}

TEST(ModelIo, SavedAndLoadedModelsOfEveryKindScoreAsBeforeAndServeTheExactTopK) {
  test::OneThread one;
  test::TempDir dir;
  const TinyJoint& tj = world();
  const ServingData sd = make_serving_data(tj.world.data, tj.known, 42);
  for (const auto& t : trained_kinds()) {
    SCOPED_TRACE(t.kind);
    const std::string path = dir.path(t.kind + ".ckpt");
    save_checkpoint(path, t.export_ck);
    std::unique_ptr<ScoringModel> m = load_scoring_model(load_checkpoint(path), "cpu");
    ASSERT_EQ(m->kind(), t.kind);
    ASSERT_EQ(m->num_items(), tj.world.data.num_items());
    // The serving data came back: the same histories and catalogue.
    ASSERT_EQ(m->serving().histories.size(), sd.histories.size());
    EXPECT_EQ(m->serving().histories, sd.histories);
    EXPECT_EQ(m->serving().item_catalog.size(), tj.world.data.item_text.size());
    Recommender rec(path, RecommenderOptions().device("cpu"));
    EXPECT_EQ(rec.info().task, t.kind);
    const int64_t I = m->num_items();
    for (int32_t u = 0; u < 12; ++u) {
      const std::vector<int32_t>& h = sd.histories[size_t(u)];
      const std::vector<float> before = t.own(u, h);
      const std::vector<float> after = m->score_items({u}, {h}, {0});
      ASSERT_EQ(after.size(), before.size());
      for (size_t i = 0; i < before.size(); ++i)
        ASSERT_NEAR(after[i], before[i], 1e-5) << "user " << u << " item " << i;
      // The oracle: every unseen item sorted by the model's own score.
      std::vector<int32_t> unseen;
      for (int32_t i = 0; i < I; ++i)
        if (std::find(h.begin(), h.end(), i) == h.end()) unseen.push_back(i);
      std::stable_sort(unseen.begin(), unseen.end(),
                       [&](int32_t a, int32_t b) { return before[size_t(a)] > before[size_t(b)]; });
      RecommendRequest q;
      q.user = tj.world.data.users.raw(u);
      q.k = 5;
      q.explain = 0;
      // The whole catalogue first (the tiny world's users have seen most of its 40 items).
      q.exclude_seen = false;
      std::vector<int32_t> every = all_items(int32_t(I));
      std::stable_sort(every.begin(), every.end(),
                       [&](int32_t a, int32_t b) { return before[size_t(a)] > before[size_t(b)]; });
      const RecommendResponse full = rec.recommend(q);
      ASSERT_EQ(full.items.size(), 5u);
      for (size_t p = 0; p < full.items.size(); ++p) {
        EXPECT_NEAR(before[size_t(every[p])], before[size_t(full.items[p].index)], 1e-5) << "rank " << p;
        EXPECT_NEAR(full.items[p].score, before[size_t(full.items[p].index)], 1e-4) << "rank " << p;
      }
      EXPECT_GT(before[size_t(every[0])], before[size_t(every[10])]) << "the scores should not be all equal";
      q.exclude_seen = true;
      const RecommendResponse r = rec.recommend(q);
      ASSERT_EQ(r.items.size(), std::min<size_t>(5, unseen.size()));
      for (size_t p = 0; p < r.items.size(); ++p) {
        // Same scores rank by rank, and each item's score is the model's own: an exact top-K
        // (items of equal score may come in either order).
        EXPECT_NEAR(before[size_t(unseen[p])], before[size_t(r.items[p].index)], 1e-5) << "rank " << p;
        EXPECT_NEAR(r.items[p].score, before[size_t(r.items[p].index)], 1e-4) << "rank " << p;
        EXPECT_EQ(std::find(h.begin(), h.end(), r.items[p].index), h.end()) << "a seen item was recommended";
      }
    }
  }
}

TEST(ModelIo, KindsThatCannotScoreANewUserOrHaveNoItemSpaceSaySo) {
  test::TempDir dir;
  for (const auto& t : trained_kinds()) {
    if (t.kind != "rating" && t.kind != "knn") continue;
    const std::string path = dir.path(t.kind + ".ckpt");
    save_checkpoint(path, t.export_ck);
    Recommender rec(path, RecommenderOptions().device("cpu"));
    RecommendRequest q;
    q.recent_items = {world().world.data.items.raw(1)};
    try {
      rec.recommend(q);
      ADD_FAILURE() << t.kind << ": an anonymous request was answered";
    } catch (const RequestError& e) {
      EXPECT_EQ(e.field(), "user");
      EXPECT_NE(std::string(e.what()).find("a " + t.kind + " model scores the users it was trained on"),
                std::string::npos)
          << e.what();
    }
    SimilarRequest s;
    s.item = world().world.data.items.raw(1);
    if (t.kind == "knn") {
      EXPECT_THROW(rec.similar(s), RequestError);
    } else {
      EXPECT_EQ(rec.similar(s).items.size(), 10u);  // by the MF item factors
    }
  }
}

/// The error of `fn`, or "" when it does not throw.
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(ModelIo, CheckpointErrorsNameTheFileWhatItHoldsAndWhatWasExpected) {
  test::TempDir dir;
  const auto& kinds = trained_kinds();
  const Checkpoint& rating = kinds[0].export_ck;
  const Checkpoint& ctr = kinds[1].export_ck;
  ASSERT_EQ(rating.task, "rating");
  ASSERT_EQ(ctr.task, "ctr");
  const std::string out = dir.path("mf.ckpt"), other = dir.path("ctr.ckpt");
  save_checkpoint(out, rating);
  save_checkpoint(other, ctr);

  // An export given to --resume.
  std::string e = error_of([&] { load_training_checkpoint(out, "rating"); });
  EXPECT_NE(e.find("'" + out +
                   "' is a model export (task rating); --resume needs a training checkpoint of task "
                   "rating: RUN_DIR/<stage>/last.ckpt"),
            std::string::npos)
      << e;
  // Another kind where a rating model is expected.
  e = error_of([&] { RatingFit::from_checkpoint(load_checkpoint(other), "cpu"); });
  EXPECT_NE(e.find("checkpoint '" + other + "' is a model export (task ctr); expected a rating model"),
            std::string::npos)
      << e;
  // A kind no loader is registered for.
  Checkpoint pre = rating;
  pre.task = "mlm-pretrain";
  pre.path = "pre.ckpt";
  e = error_of([&] { load_scoring_model(pre); });
  EXPECT_NE(e.find("checkpoint 'pre.ckpt' is a model export (task mlm-pretrain); expected a model of a registered "
                   "kind (ctr, dmf, joint, knn, next_item, policy, rating)"),
            std::string::npos)
      << e;
  // Truncated.
  const std::string bytes = read_file(out);
  write_file_atomic(dir.path("cut.ckpt"), bytes.substr(0, bytes.size() / 2));
  e = error_of([&] { load_checkpoint(dir.path("cut.ckpt")); });
  EXPECT_NE(e.find("checkpoint '" + dir.path("cut.ckpt") + "' is corrupted: checksum mismatch"), std::string::npos)
      << e;
  EXPECT_NE(e.find("truncated or altered"), std::string::npos) << e;
  // An older format (version 0), with a valid checksum of its own.
  std::string old = bytes;
  const uint32_t v0 = 0;
  std::memcpy(&old[8], &v0, sizeof v0);
  const uint64_t sum = fnv1a64(std::string_view(old).substr(0, old.size() - 8));
  std::memcpy(&old[old.size() - 8], &sum, sizeof sum);
  write_file_atomic(dir.path("old.ckpt"), old);
  e = error_of([&] { load_checkpoint(dir.path("old.ckpt")); });
  EXPECT_NE(e.find("checkpoint '" + dir.path("old.ckpt") + "' has format version 0, this build reads 1 only"),
            std::string::npos)
      << e;
  // The Recommender says the same for a file it cannot serve.
  e = error_of([&] { Recommender r(dir.path("cut.ckpt")); });
  EXPECT_NE(e.find(dir.path("cut.ckpt")), std::string::npos) << e;
}

TEST(ModelIo, ATrainingCheckpointCarriesTheModelAndWhatServingNeeds) {
  test::OneThread one;
  test::TempDir dir;
  const TinyJoint& tj = world();
  const Dataset& ds = tj.world.data;
  const ServingData sd = make_serving_data(ds, tj.known, 42);
  RatingFit t = fit_rating(explicit_ratings(ds, ds.interactions.subset(tj.split.train)),
                           explicit_ratings(ds, ds.interactions.subset(tj.split.valid)), ds.num_users(), ds.num_items(),
                           RatingTrainOptions().solver("sgd").epochs(2).dim(8).seed(3).refit(false),
                           RunOptions().out_dir(dir.path("run")).id_maps(ds).checkpoint_tensors(serving_tensors(sd)));
  for (const char* name : {"best.ckpt", "last.ckpt"}) {
    const std::string path = dir.path(std::string("run/select/") + name);
    Checkpoint ck = load_checkpoint(path);
    EXPECT_TRUE(is_training_checkpoint(ck));
    EXPECT_NE(describe_checkpoint(ck).find("a training checkpoint (task rating, stage select, epoch "),
              std::string::npos)
        << describe_checkpoint(ck);
    std::unique_ptr<ScoringModel> m = load_scoring_model(ck, "cpu");
    EXPECT_EQ(m->kind(), "rating");
    EXPECT_EQ(m->serving().histories, sd.histories);
    Recommender rec(path, RecommenderOptions().device("cpu"));
    RecommendRequest q;
    q.user = ds.users.raw(0);
    EXPECT_EQ(rec.recommend(q).items.size(), 10u);
  }
  // The best epoch's model is the one fit_rating returned (early stopping restores it).
  std::unique_ptr<ScoringModel> last = load_scoring_model(load_checkpoint(dir.path("run/select/best.ckpt")), "cpu");
  const std::vector<float> a = last->score_items({3}, {{}}, {0});
  const std::vector<float> b = t.predict(std::vector<int32_t>(size_t(ds.num_items()), 3), all_items(ds.num_items()));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6);
}

}  // namespace
}  // namespace mtrec
