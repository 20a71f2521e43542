// `mtrec pretrain`: train a sentencepiece tokenizer on the catalogue's text and pretrain the
// text encoder with MLM; `mtrec embed`: write item (and user) text embeddings, re-encoding only
// the texts whose hash is not in the cache.
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "cli.h"
#include "train_registry.h"
#include "mtrec/core/check.h"
#include "mtrec/core/device.h"
#include "mtrec/core/io.h"
#include "mtrec/core/log.h"
#include "mtrec/core/progress.h"
#include "mtrec/core/random.h"
#include "mtrec/nn/embedding_cache.h"
#include "mtrec/nn/text_encoder.h"
#include "mtrec/text/tokenizer.h"
#include "mtrec/train/pretrain.h"

namespace mtrec::cli {
namespace {

constexpr const char* kTokenizerFile = "tokenizer.model";
constexpr const char* kEncoderFile = "encoder.pt";

struct DataArgs {
  TrainArgs data;  // --dataset, --data-dir and the synthetic world's size, as `mtrec train`
  DataArgs() {
    data.dataset = "synthetic";
    data.synthetic_users = 2000;
    data.synthetic_items = 1000;
  }
};

void add_data_options(CLI::App* cmd, DataArgs& a) {
  cmd->add_option("--dataset", a.data.dataset, "synthetic|ml-100k")->check(CLI::IsMember({"synthetic", "ml-100k"}));
  cmd->add_option("--data-dir", a.data.data_dir, "Folder holding the MovieLens files (ml-100k)");
  cmd->add_option("--users", a.data.synthetic_users, "Synthetic world: users");
  cmd->add_option("--items", a.data.synthetic_items, "Synthetic world: items");
}

std::vector<std::string> texts_of(const TextCatalog& catalog) {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(catalog.size()));
  for (int32_t i = 0; i < catalog.size(); ++i) out.push_back(catalog.text(i));
  return out;
}

// ---------------------------------------------------------------------------------------------
struct PretrainArgs {
  DataArgs data;
  std::string out;
  int64_t vocab_size = 4000, dim = 128, layers = 2, heads = 4, max_len = 64, batch = 64, epochs = 3;
  double lr = 1e-3, dropout = 0.1, mask_prob = 0.15;
  std::string pooling = "mean";
  int64_t out_dim = 0;
};

void pretrain(const PretrainArgs& a, const CliContext& ctx) {
  seed_everything(ctx.seed);
  const torch::Device device = choose_device(ctx.device);
  std::filesystem::create_directories(a.out);
  Dataset ds = load_dataset(a.data.data, ctx);
  std::vector<std::string> corpus = catalogue_texts(ds);
  MTREC_CHECK(!corpus.empty(), "dataset '", ds.name, "' has no item or user text to pretrain on");
  log_info("training the tokenizer on {} texts (vocab {})", corpus.size(), a.vocab_size);
  auto tok = SentencePieceTokenizer::train(corpus, SentencePieceTrainOptions().vocab_size(a.vocab_size).seed(ctx.seed));
  nn::TextEncoder enc(nn::TextEncoderOptions(tok.vocab_size(), a.dim)
                          .layers(a.layers)
                          .heads(a.heads)
                          .max_len(a.max_len)
                          .dropout(a.dropout)
                          .pooling(nn::parse_pooling(a.pooling))
                          .out_dim(a.out_dim)
                          .pad_id(tok.pad_id()));
  MlmPretrainResult r = pretrain_mlm(enc, tok, corpus,
                                     TrainerOptions()
                                         .epochs(static_cast<int>(a.epochs))
                                         .batch_size(a.batch)
                                         .lr(a.lr)
                                         .weight_decay(0.01)
                                         .seed(derive_seed(ctx.seed, "pretrain"))
                                         .device(ctx.device),
                                     MlmPretrainOptions().mask_prob(a.mask_prob), run_options(a.data.data, ctx, ds));
  nlohmann::json epochs = nlohmann::json::array();
  for (const auto& e : r.epochs)
    epochs.push_back({{"epoch", e.epoch},
                      {"mlm_loss", e.loss},
                      {"masked_accuracy", e.accuracy},
                      {"masked_tokens", e.masked_tokens}});
  const std::string tok_path = (std::filesystem::path(a.out) / kTokenizerFile).string();
  const std::string enc_path = (std::filesystem::path(a.out) / kEncoderFile).string();
  tok.save(tok_path);
  enc->to(torch::kCPU);
  save_text_encoder(*enc, enc_path);
  log_info("saved {} and {}", tok_path, enc_path);
  ctx.write_json({{"command", "pretrain"},
                  {"dataset", ds.name},
                  {"texts", corpus.size()},
                  {"vocab_size", tok.vocab_size()},
                  {"device", describe_device(device)},
                  {"epochs", epochs},
                  {"tokenizer", tok_path},
                  {"encoder", enc_path}});
}

// ---------------------------------------------------------------------------------------------
struct EmbedArgs {
  DataArgs data;
  std::string model_dir, out, cache;
  bool users = false;
  int64_t batch = 128;
};

struct EmbedCounts {
  int64_t total = 0, reused = 0;
};

/// Embeds `texts` into rows of `out` (texts.size() x dim), reusing `cache` and adding to it.
EmbedCounts embed_texts(nn::TextEncoderImpl& enc, const SentencePieceTokenizer& tok,
                        const std::vector<std::string>& texts, uint64_t salt, int64_t batch,
                        const torch::Device& device, nn::EmbeddingCache& cache, std::vector<float>& out,
                        std::vector<uint64_t>& hashes) {
  const size_t dim = cache.dim();
  out.assign(texts.size() * dim, 0.0f);
  EmbedCounts counts;
  std::vector<size_t> todo;
  for (size_t i = 0; i < texts.size(); ++i) {
    const uint64_t h = nn::text_hash(texts[i], salt);
    hashes.push_back(h);
    if (const float* v = cache.find(h)) {
      std::copy(v, v + dim, out.begin() + long(i * dim));
      ++counts.reused;
    } else {
      todo.push_back(i);
    }
  }
  counts.total = static_cast<int64_t>(texts.size());
  ProgressBar bar(static_cast<int64_t>(todo.size()), "embed");
  torch::NoGradGuard no_grad;
  for (size_t start = 0; start < todo.size(); start += size_t(batch)) {
    std::vector<std::string> chunk;
    const size_t end = std::min(todo.size(), start + size_t(batch));
    for (size_t k = start; k < end; ++k) chunk.push_back(texts[todo[k]]);
    BatchEncoding b = tok.encode_batch(chunk, enc.options.max_len());
    at::Tensor pooled = enc.forward(b.input_ids.to(device), b.attention_mask.to(device).to(torch::kBool))
                            .pooled.to(torch::kCPU, torch::kFloat32)
                            .contiguous();
    const float* p = pooled.data_ptr<float>();
    for (size_t k = start; k < end; ++k) {
      const size_t row = todo[k];
      std::copy(p + (k - start) * dim, p + (k - start + 1) * dim, out.begin() + long(row * dim));
      cache.put(hashes[hashes.size() - texts.size() + row], p + (k - start) * dim);
    }
    bar.tick(static_cast<int64_t>(end - start));
  }
  bar.finish();
  return counts;
}

void embed(const EmbedArgs& a, const CliContext& ctx) {
  seed_everything(ctx.seed);
  const torch::Device device = choose_device(ctx.device);
  const auto dir = std::filesystem::path(a.model_dir);
  const std::string tok_path = (dir / kTokenizerFile).string(), enc_path = (dir / kEncoderFile).string();
  auto tok = SentencePieceTokenizer::load(tok_path);
  nn::TextEncoder enc = nn::load_text_encoder(enc_path, device);
  enc->eval();
  MTREC_CHECK(enc->options.vocab_size() == tok.vocab_size(), "encoder vocabulary ", enc->options.vocab_size(),
              " != tokenizer vocabulary ", tok.vocab_size(), " (", enc_path, " vs ", tok_path, ")");
  // The cache key covers the model too: new weights or tokenizer invalidate every entry.
  const uint64_t salt = nn::text_hash(read_file(enc_path), nn::text_hash(read_file(tok_path)));
  const uint32_t dim = static_cast<uint32_t>(enc->options.output_dim());
  const std::string cache_path = a.cache.empty() ? a.out + ".cache" : a.cache;
  nn::EmbeddingCache cache = nn::EmbeddingCache::load_or_empty(cache_path, dim);

  Dataset ds = load_dataset(a.data.data, ctx);
  std::vector<uint64_t> hashes;
  std::ostringstream tsv;
  tsv << std::setprecision(7);
  nlohmann::json counts;
  auto write_kind = [&](const char* kind, const TextCatalog& cat, const IdMap& ids) {
    std::vector<float> vecs;
    EmbedCounts c = embed_texts(*enc, tok, texts_of(cat), salt, a.batch, device, cache, vecs, hashes);
    for (int32_t i = 0; i < cat.size(); ++i) {
      tsv << kind << '\t' << (i < ids.size() ? ids.raw(i) : std::to_string(i)) << '\t';
      for (uint32_t d = 0; d < dim; ++d) tsv << (d ? " " : "") << vecs[size_t(i) * dim + d];
      tsv << '\n';
    }
    log_info("{}: {} embedded, {} reused from the cache, {} encoded", kind, c.total, c.reused, c.total - c.reused);
    counts[kind] = {{"total", c.total}, {"reused", c.reused}, {"encoded", c.total - c.reused}};
  };
  write_kind("item", ds.item_text, ds.items);
  if (a.users) write_kind("user", ds.user_text, ds.users);
  write_file_atomic(a.out, tsv.str());
  cache.retain(hashes);
  cache.save(cache_path);
  log_info("wrote {} ({}-dimensional; format: kind<TAB>raw id<TAB>values) and cache {}", a.out, dim, cache_path);
  ctx.write_json({{"command", "embed"},
                  {"output", a.out},
                  {"cache", cache_path},
                  {"dim", dim},
                  {"device", describe_device(device)},
                  {"counts", counts}});
}

}  // namespace

MTREC_CLI_COMMANDS([](CLI::App& app, CliContext& ctx) {
  auto pa = std::make_shared<PretrainArgs>();
  auto* p = app.add_subcommand("pretrain", "Train the tokenizer and pretrain the text encoder with MLM");
  add_data_options(p, pa->data);
  p->add_option("--out", pa->out, "Output folder (tokenizer.model, encoder.pt)")->required();
  p->add_option("--vocab-size", pa->vocab_size, "Tokenizer vocabulary size");
  p->add_option("--dim", pa->dim, "Encoder width");
  p->add_option("--layers", pa->layers, "Transformer layers");
  p->add_option("--heads", pa->heads, "Attention heads");
  p->add_option("--max-len", pa->max_len, "Tokens per text, [CLS] included");
  p->add_option("--out-dim", pa->out_dim, "Projection of the pooled vector (0 = none)");
  p->add_option("--pooling", pa->pooling, "cls or mean")->check(CLI::IsMember({"cls", "mean"}));
  p->add_option("--batch", pa->batch, "Texts per batch");
  p->add_option("--epochs", pa->epochs, "Passes over the corpus");
  p->add_option("--lr", pa->lr, "AdamW learning rate");
  p->add_option("--dropout", pa->dropout, "Dropout");
  p->add_option("--mask-prob", pa->mask_prob, "Share of tokens selected for MLM");
  p->add_option("--run-dir", pa->data.data.run_dir,
                "Engine artefacts: checkpoints, metrics.jsonl, report.html, config");
  p->add_option("--checkpoint-every", pa->data.data.checkpoint_every, "Optimiser steps between mid-epoch checkpoints");
  p->add_option("--resume", pa->data.data.resume, "Continue the run of this checkpoint (RUN_DIR/pretrain/last.ckpt)");
  p->callback([pa, &ctx] { pretrain(*pa, ctx); });

  auto ea = std::make_shared<EmbedArgs>();
  auto* e = app.add_subcommand("embed", "Write text embeddings of items (and users), reusing a hash-keyed cache");
  add_data_options(e, ea->data);
  e->add_option("--model", ea->model_dir, "Folder written by `mtrec pretrain`")->required();
  e->add_option("--out", ea->out, "Output TSV: kind, raw id, space-separated values")->required();
  e->add_option("--cache", ea->cache, "Cache file (default: OUT.cache)");
  e->add_flag("--embed-users", ea->users, "Embed user texts too");
  e->add_option("--batch", ea->batch, "Texts per batch");
  e->callback([ea, &ctx] { embed(*ea, ctx); });
});

}  // namespace mtrec::cli
