// `mtrec train --task next-item`: the SASRec-style next-item head (tasks/next_item.h) under
// protocol S of EVALUATION.md: leave-one-out by time with a seeded tie order, full ranking over
// unseen items and 100 sampled negatives, beside the most-popular baseline on the same split.
//   mtrec train --task next-item --dataset ml-100k --data-dir DIR --epochs 100 --device cuda --out seq.ckpt
//   mtrec eval --checkpoint seq.ckpt --dataset ml-100k --data-dir DIR
#include <torch/torch.h>

#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/log.h"
#include "mtrec/eval/protocols.h"
#include "mtrec/tasks/next_item.h"
#include "mtrec/train/fit_next_item.h"
#include "train_registry.h"

namespace mtrec::cli {
namespace {

struct NextItemArgs {
  int64_t max_len = 200, layers = 2, heads = 1;
  int warmup = 40, eval_every = 5;
  double dropout = 0.2;
};
NextItemArgs& next_args() {
  static NextItemArgs a;
  return a;
}

nlohmann::json evaluate_all(NextItemModel& model, const NextItemData& data, uint64_t seed) {
  nlohmann::json j;
  for (int neg : {0, kRankingNegatives}) {
    const RankingOptions opts = ranking_protocol(neg, seed);
    std::string key = neg ? "sampled_100" : "full";
    auto r = evaluate_next_item(model, data, NextItemStage::Test, opts);
    auto p = evaluate_most_popular(data, NextItemStage::Test, opts);
    j[key] = ranking_json(r);
    j["most_popular_" + key] = ranking_json(p);
    log_info("next-item {}: HR@10 {:.4f} NDCG@10 {:.4f} (most popular {:.4f} / {:.4f})", key, r.at("HR@10"),
             r.at("NDCG@10"), p.at("HR@10"), p.at("NDCG@10"));
  }
  j["hr@10"] = j["full"]["HR@10"];
  j["ndcg@10"] = j["full"]["NDCG@10"];
  return j;
}

nlohmann::json train_next_item_task(const TrainArgs& args, const CliContext& ctx) {
  TrainArgs a = args;
  a.positives_only = true;
  MTREC_CHECK(a.split == "loo", "--task next-item uses the leave-one-out split (--split loo), got '", a.split, "'");
  auto d = load_data(a, ctx);
  const auto& na = next_args();
  auto t0 = std::chrono::steady_clock::now();
  auto data = make_next_item_data(d.data.interactions, d.data.num_users(), d.data.num_items(), ctx.seed);
  NextItemModel model(NextItemOptions(d.data.num_items())
                          .d_model(a.dim ? a.dim : 64)
                          .layers(na.layers)
                          .heads(na.heads)
                          .max_len(na.max_len)
                          .dropout(na.dropout));
  auto result = fit_next_item(model, data,
                              NextItemTrainOptions()
                                  .epochs(a.epochs ? a.epochs : 30)
                                  .batch_size(a.batch > 0 ? a.batch : 64)
                                  .lr(a.lr > 0 ? a.lr : 5e-3)
                                  .warmup_steps(na.warmup)
                                  .eval_every(na.eval_every)
                                  .patience(a.patience >= 0 ? a.patience : 0)
                                  .seed(ctx.seed)
                                  .device(ctx.device),
                              run_options(a, ctx, d));
  auto j = run_info(a, ctx, d);
  j.update(evaluate_all(model, data, ctx.seed));
  j.update({{"epochs_run", result.epochs_run},
            {"best_epoch", result.best_epoch},
            {"best_valid_ndcg@10", result.best_valid_ndcg10},
            {"train_s", result.seconds},
            {"wall_s", seconds_since(t0)}});
  if (!a.out.empty()) {
    save_export(a.out, next_item_checkpoint(model, d.data.users, d.data.items), d, ctx);
  }
  return j;
}

nlohmann::json eval_next_item_task(const Checkpoint& ck, const TrainArgs& args, const CliContext& ctx) {
  TrainArgs a = args;
  a.positives_only = true;
  a.split = "loo";
  auto d = load_data(a, ctx);
  NextItemModel model = next_item_from_checkpoint(ck, ctx.device);
  // Histories are expressed in the checkpoint's item ids; unknown users/items are dropped.
  int64_t dropped = 0;
  auto x = to_checkpoint_ids(d.data.interactions, d.data, ck, dropped);
  auto data = make_next_item_data(x, ck.users.size(), ck.items.size(), ctx.seed);
  auto j = run_info(a, ctx, d);
  j.update(evaluate_all(model, data, ctx.seed));
  j["unknown_ids_dropped"] = dropped;
  return j;
}

}  // namespace

MTREC_TRAIN_TASK(TrainTask{
    "next_item", "SASRec-style causal transformer, HR/NDCG@K full ranking and 100 negatives (protocol S)",
    train_next_item_task, eval_next_item_task, [](CLI::App* cmd) {
      auto& a = next_args();
      cmd->add_option("--max-len", a.max_len, "next-item: history positions seen")->capture_default_str();
      cmd->add_option("--layers", a.layers, "next-item: transformer blocks")->capture_default_str();
      cmd->add_option("--heads", a.heads, "next-item: attention heads")->capture_default_str();
      cmd->add_option("--warmup", a.warmup, "next-item: warm-up steps")->capture_default_str();
      cmd->add_option("--eval-every", a.eval_every, "next-item: epochs between validations")->capture_default_str();
      cmd->add_option("--dropout", a.dropout, "next-item: dropout")->capture_default_str();
    }});

}  // namespace mtrec::cli
