// The C++ example of README.md, built (not run) by `./bootstrap.sh test` against the installed
// mtrec so that the README cannot drift from the API.
#include <mtrec/data/synthetic.h>
#include <mtrec/eval/protocols.h>
#include <mtrec/model/joint_eval.h>
#include <mtrec/nn/checkpoint.h>
#include <mtrec/serve/recommender.h>
#include <mtrec/train/fit_joint.h>

#include <cstdio>

int main() {
  // 1000 users, 500 items, three scenarios with a context text on every row; split once by time
  mtrec::SyntheticWorld w = mtrec::generate_world(mtrec::SyntheticOptions().users(1000).items(500).interactions(60000));
  mtrec::Split split = mtrec::protocol_split(w.data.interactions, "temporal", 42);  // 80/10/10 by time
  // the unified model: text encoder fine-tuned in the joint loss, MMoE experts, STAR scenario
  // layer, rating + CTR + next-item + match + scenario classifier + λ·MLM, uncertainty weighting;
  // checkpoints, metrics.jsonl and report.html in runs/joint (resume with .resume(".../last.ckpt"))
  mtrec::JointFit fit = mtrec::fit_joint(
      w.data, split, mtrec::JointTrainOptions().arch("mmoe").scenario_arch("star").weighting("uncertainty").epochs(3),
      mtrec::RunOptions().out_dir("runs/joint").id_maps(w.data));
  // Data parallel: start this program under torchrun (or mtrec::launch_local_workers) and give
  // the RunOptions .communicator(std::make_shared<mtrec::Communicator>(mtrec::DistributedOptions::from_env()))
  // (mtrec/train/distributed.h); every rank trains its share of each batch, rank 0 writes runs/joint.
  // what the model may know at test time: train + validation rows
  mtrec::Interactions known = w.data.interactions.subset(mtrec::known_rows(split));
  mtrec::JointReport test = fit.evaluate(w.data, known, w.data.interactions.subset(split.test));
  std::printf("CTR AUC %.4f, next-item HR@10 %.4f, search CTR AUC %.4f, cold-item CTR AUC %.4f\n",
              test.overall["ctr"]["auc"], test.overall["next_item"]["HR@10"], test.per_scenario["search"]["ctr"]["auc"],
              test.cold["ctr"]["auc"]);
  mtrec::save_checkpoint("joint.ckpt", fit.to_checkpoint(w.data));  // atomic, checksummed, golden pairs
  // serve it: the top-10 home-feed items of user "u0" by the task map (CTR + 0.5 next-item),
  // seen items excluded, each explained by the user's most similar history item
  mtrec::Recommender rec("joint.ckpt", mtrec::RecommenderOptions().task_map("home_feed=ctr:1,next_item:0.5;*=ctr"));
  mtrec::RecommendRequest q;
  q.user = w.data.users.raw(0);
  q.scenario = "home_feed";  // or q.context = "weekend hiking gear" (the scenario classifier picks)
  for (const mtrec::Recommendation& r : rec.recommend(q).items)
    std::printf("%s %.3f %s (like %s)\n", r.item.c_str(), r.score, r.title.c_str(),
                r.because.empty() ? "-" : r.because[0].title.c_str());
  rec.reload("joint.ckpt");  // hot swap: requests in flight finish on the old model
  return 0;
}
