// TextEncoder: shapes, padding invariance, float64 gradient check, save/load, the attention
// shim against an exact loop, and BERT import against a hand-written BERT forward.
#include <torch/torch.h>

#include <cmath>

#include "mtrec/core/check.h"
#include "mtrec/core/io.h"
#include "mtrec/nn/bert_import.h"
#include "mtrec/nn/compat.h"
#include "mtrec/nn/embedding_cache.h"
#include "mtrec/nn/text_encoder.h"
#include "mtrec/text/safetensors.h"
#include "test_util.h"

namespace mtrec::nn {
namespace {

TextEncoderOptions tiny(int64_t vocab = 30) {
  return TextEncoderOptions(vocab, 16).layers(2).heads(2).ffn_dim(24).max_len(12).dropout(0.0);
}

at::Tensor random_ids(int64_t b, int64_t l, int64_t vocab, int64_t lo = 1) {
  return torch::randint(lo, vocab, {b, l}, torch::kInt64);
}

TEST(TextEncoder, Shapes) {
  torch::manual_seed(1);
  TextEncoder enc(tiny().out_dim(8));
  auto ids = random_ids(3, 7, 30);
  auto mask = torch::ones({3, 7}, torch::kBool);
  auto out = enc->forward(ids, mask);
  EXPECT_EQ(out.hidden.sizes(), (std::vector<int64_t>{3, 7, 16}));
  EXPECT_EQ(out.pooled.sizes(), (std::vector<int64_t>{3, 8}));
  TextEncoder no_proj(tiny().pooling(Pooling::Mean).type_vocab_size(2).pre_layer_norm(false));
  EXPECT_EQ(no_proj->forward(ids).pooled.sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_THROW(enc->forward(random_ids(1, 13, 30)), Error);  // longer than max_len
  EXPECT_THROW(TextEncoder(tiny().heads(3)), Error);         // 16 not divisible by 3
  EXPECT_THROW(enc->forward(ids, torch::ones({3, 6}, torch::kBool)), Error);
  EXPECT_EQ(parse_pooling("mean"), Pooling::Mean);
  EXPECT_THROW(parse_pooling("max"), Error);
}

TEST(TextEncoder, AppendingPaddingLeavesPooledOutputUnchanged) {
  for (Pooling pooling : {Pooling::Cls, Pooling::Mean}) {
    for (bool pre_ln : {true, false}) {
      torch::manual_seed(2);
      TextEncoder enc(tiny().pooling(pooling).pre_layer_norm(pre_ln).dropout(0.1).out_dim(5));
      enc->eval();
      auto ids = random_ids(4, 6, 30);
      auto mask = torch::ones({4, 6}, torch::kBool);
      mask[1].slice(0, 4) = false;  // row 1 already has two pads
      ids.masked_fill_(mask.logical_not(), 0);
      auto padded_ids = torch::cat({ids, torch::zeros({4, 5}, torch::kInt64)}, 1);
      auto padded_mask = torch::cat({mask, torch::zeros({4, 5}, torch::kBool)}, 1);
      torch::NoGradGuard no_grad;
      auto a = enc->forward(ids, mask).pooled;
      auto b = enc->forward(padded_ids, padded_mask).pooled;
      EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6))
          << pooling_name(pooling) << " pre_ln=" << pre_ln << " max diff " << (a - b).abs().max().item<double>();
      // Padding must matter through the mask only: an unmasked pad token would change the output.
      auto c = enc->forward(padded_ids, torch::ones_like(padded_mask)).pooled;
      if (pooling == Pooling::Mean) {
        EXPECT_GT((a - c).abs().max().item<double>(), 1e-4);
      }
    }
  }
}

// Central finite differences in float64 against autograd on a few entries of several parameters.
TEST(TextEncoder, GradientMatchesFiniteDifferences) {
  for (bool pre_ln : {true, false}) {
    torch::manual_seed(3);
    TextEncoder enc(TextEncoderOptions(11, 8)
                        .layers(2)
                        .heads(2)
                        .ffn_dim(12)
                        .max_len(6)
                        .dropout(0.0)
                        .pooling(Pooling::Mean)
                        .out_dim(3)
                        .pre_layer_norm(pre_ln));
    enc->to(torch::kFloat64);
    auto ids = random_ids(2, 5, 11);
    auto mask = torch::ones({2, 5}, torch::kBool);
    mask[1][4] = false;
    auto w_pooled = torch::randn({2, 3}, torch::kFloat64);
    auto w_hidden = torch::randn({2, 5, 8}, torch::kFloat64);
    auto loss_fn = [&] {
      auto out = enc->forward(ids, mask);
      return (out.pooled * w_pooled).sum() + (out.hidden * w_hidden).sum() * 0.1;
    };
    enc->zero_grad();
    loss_fn().backward();
    auto params = enc->named_parameters();
    int checked = 0;
    for (const char* name :
         {"token_embedding.weight", "position_embedding.weight", "layers.0.query.weight", "layers.0.key.bias",
          "layers.1.value.weight", "layers.1.ffn_in.weight", "layers.0.norm1.weight", "projection.weight"}) {
      at::Tensor p = params[name];
      at::Tensor grad = p.grad().clone();
      at::Tensor flat = p.view(-1);
      for (int64_t k : {int64_t{0}, flat.numel() / 2, flat.numel() - 1}) {
        const int64_t idx = name == std::string("token_embedding.weight") ? ids[0][1].item<int64_t>() * 8 + k % 8 : k;
        torch::NoGradGuard no_grad;
        const double eps = 1e-6, orig = flat[idx].item<double>();
        flat[idx] = orig + eps;
        const double up = loss_fn().item<double>();
        flat[idx] = orig - eps;
        const double down = loss_fn().item<double>();
        flat[idx] = orig;
        const double numeric = (up - down) / (2 * eps);
        const double analytic = grad.view(-1)[idx].item<double>();
        EXPECT_NEAR(analytic, numeric, 1e-6 + 1e-5 * std::abs(numeric)) << name << "[" << idx << "] pre_ln=" << pre_ln;
        ++checked;
      }
    }
    EXPECT_EQ(checked, 24);
  }
}

TEST(TextEncoder, SaveLoadRoundTripIsExact) {
  test::TempDir dir;
  torch::manual_seed(4);
  TextEncoder enc(tiny().pooling(Pooling::Mean).out_dim(6).type_vocab_size(2).pre_layer_norm(false).pad_id(3));
  const std::string path = dir.path("enc.pt");
  save_text_encoder(*enc, path);
  TextEncoder back = load_text_encoder(path);
  EXPECT_EQ(back->options.pad_id(), 3);
  EXPECT_EQ(back->options.pooling(), Pooling::Mean);
  EXPECT_FALSE(back->options.pre_layer_norm());
  auto a = enc->named_parameters(), b = back->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& item : a) EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
  enc->eval();
  back->eval();
  auto ids = random_ids(2, 9, 30);
  EXPECT_TRUE(torch::equal(enc->forward(ids).pooled, back->forward(ids).pooled));
  EXPECT_THROW(load_text_encoder(dir.write("junk.pt", "not a checkpoint")), Error);
  EXPECT_THROW(load_text_encoder(dir.path("absent.pt")), Error);
}

// The exact attention written as loops, in float64.
at::Tensor loop_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask) {
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), Lk = k.size(2), D = q.size(3);
  auto out = torch::zeros({B, H, Lq, D}, torch::kFloat64);
  auto qa = q.accessor<double, 4>(), ka = k.accessor<double, 4>(), va = v.accessor<double, 4>();
  auto oa = out.accessor<double, 4>();
  auto ma = mask.accessor<bool, 2>();
  for (int64_t b = 0; b < B; ++b) {
    bool any = false;
    for (int64_t j = 0; j < Lk; ++j) any = any || ma[b][j];
    if (!any) continue;  // all-padding sequence: zeros
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t i = 0; i < Lq; ++i) {
        std::vector<double> s(Lk, 0);
        double mx = -1e300, z = 0;
        for (int64_t j = 0; j < Lk; ++j) {
          if (!ma[b][j]) continue;
          for (int64_t d = 0; d < D; ++d) s[j] += qa[b][h][i][d] * ka[b][h][j][d];
          s[j] /= std::sqrt(static_cast<double>(D));
          mx = std::max(mx, s[j]);
        }
        for (int64_t j = 0; j < Lk; ++j) z += ma[b][j] ? std::exp(s[j] - mx) : 0;
        for (int64_t j = 0; j < Lk; ++j) {
          if (!ma[b][j]) continue;
          for (int64_t d = 0; d < D; ++d) oa[b][h][i][d] += std::exp(s[j] - mx) / z * va[b][h][j][d];
        }
      }
    }
  }
  return out;
}

TEST(Attention, ReferenceMatchesLoopsAndFusedMatchesReference) {
  torch::manual_seed(5);
  auto q = torch::randn({3, 2, 5, 4}, torch::kFloat64), k = torch::randn({3, 2, 6, 4}, torch::kFloat64);
  auto v = torch::randn({3, 2, 6, 4}, torch::kFloat64);
  auto mask = torch::ones({3, 6}, torch::kBool);
  mask[0].slice(0, 3) = false;  // partial padding
  mask[2] = false;              // all padding: zeros, not NaN
  auto ref = attention_reference(q, k, v, mask, 0.0, false);
  EXPECT_FALSE(ref.isnan().any().item<bool>());
  EXPECT_TRUE(torch::allclose(ref, loop_attention(q, k, v, mask), 1e-12, 1e-12));
  EXPECT_TRUE(torch::equal(ref[2], torch::zeros_like(ref[2])));
  // The dispatching entry point agrees with the exact one (SDPA on LibTorch >= 2.0).
  auto qf = q.to(torch::kFloat32), kf = k.to(torch::kFloat32), vf = v.to(torch::kFloat32);
  auto fast = attention(qf, kf, vf, mask, 0.0, false);
  EXPECT_TRUE(torch::allclose(fast, attention_reference(qf, kf, vf, mask, 0.0, false), 1e-5, 1e-5))
      << "fused=" << has_fused_attention();
  // Gradients are finite through an all-padding row.
  auto qg = qf.clone().requires_grad_(true);
  attention(qg, kf, vf, mask, 0.0, false).sum().backward();
  EXPECT_FALSE(qg.grad().isnan().any().item<bool>());
  // Dropout on the weights only while training.
  EXPECT_TRUE(torch::equal(attention_reference(qf, kf, vf, mask, 0.5, false),
                           attention_reference(qf, kf, vf, mask, 0.0, false)));
  EXPECT_FALSE(torch::equal(attention_reference(qf, kf, vf, mask, 0.5, true),
                            attention_reference(qf, kf, vf, mask, 0.0, false)));
  EXPECT_THROW(attention(qf, kf, vf, torch::ones({3, 5}, torch::kBool), 0.0, false), c10::Error);
}

TEST(Compat, AutocastGuardRunsReducedPrecisionAndRestoresState) {
  torch::manual_seed(8);
  TextEncoder enc(tiny().pooling(Pooling::Mean));
  enc->eval();
  auto ids = random_ids(2, 6, 30);
  torch::NoGradGuard no_grad;
  auto full = enc->forward(ids).pooled;
  {
    AutocastGuard amp(torch::kCPU, at::kBFloat16);
    auto lin = torch::nn::functional::linear(torch::randn({2, 4}), torch::randn({3, 4}));
    EXPECT_EQ(lin.scalar_type(), at::kBFloat16);  // linear is on autocast's lower-precision list
    auto half = enc->forward(ids).pooled.to(torch::kFloat32);
    EXPECT_TRUE(torch::isfinite(half).all().item<bool>());
    EXPECT_TRUE(torch::allclose(half, full, 0.1, 0.1)) << (half - full).abs().max().item<double>();
  }
  EXPECT_EQ(torch::nn::functional::linear(torch::randn({2, 4}), torch::randn({3, 4})).scalar_type(), at::kFloat);
  {
    AutocastGuard off(torch::kCPU, at::kBFloat16, /*enabled=*/false);
    EXPECT_EQ(torch::nn::functional::linear(torch::randn({2, 4}), torch::randn({3, 4})).scalar_type(), at::kFloat);
  }
}

// ---------------------------------------------------------------------------------------------
// BERT import against a hand-written BERT forward (post-LN, erf GELU, LayerNorm eps 1e-12).
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  auto mean = x.mean(-1, true);
  auto var = (x - mean).pow(2).mean(-1, true);
  return (x - mean) / torch::sqrt(var + 1e-12) * w + b;
}
at::Tensor linear(const at::Tensor& x, const std::map<std::string, at::Tensor>& w, const std::string& name) {
  return torch::matmul(x, w.at(name + ".weight").t()) + w.at(name + ".bias");
}

at::Tensor bert_reference(const std::map<std::string, at::Tensor>& w, const at::Tensor& ids, const at::Tensor& mask,
                          int64_t layers, int64_t heads) {
  const int64_t B = ids.size(0), L = ids.size(1), D = w.at("embeddings.word_embeddings.weight").size(1), dh = D / heads;
  auto x = w.at("embeddings.word_embeddings.weight").index({ids}) +
           w.at("embeddings.position_embeddings.weight").slice(0, 0, L).unsqueeze(0) +
           w.at("embeddings.token_type_embeddings.weight")[0];
  x = layer_norm(x, w.at("embeddings.LayerNorm.weight"), w.at("embeddings.LayerNorm.bias"));
  // Hugging Face's extended attention mask: a large negative number added to padded keys.
  auto additive = (1.0 - mask.to(torch::kFloat32)).view({B, 1, 1, L}) * -1e9;
  for (int64_t n = 0; n < layers; ++n) {
    const std::string p = "encoder.layer." + std::to_string(n) + ".";
    auto heads_of = [&](const at::Tensor& t) { return t.view({B, L, heads, dh}).permute({0, 2, 1, 3}); };
    auto q = heads_of(linear(x, w, p + "attention.self.query"));
    auto k = heads_of(linear(x, w, p + "attention.self.key"));
    auto v = heads_of(linear(x, w, p + "attention.self.value"));
    auto probs = torch::softmax(torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(dh)) + additive, -1);
    auto ctx = torch::matmul(probs, v).permute({0, 2, 1, 3}).reshape({B, L, D});
    auto attn = layer_norm(linear(ctx, w, p + "attention.output.dense") + x,
                           w.at(p + "attention.output.LayerNorm.weight"), w.at(p + "attention.output.LayerNorm.bias"));
    auto inter = linear(attn, w, p + "intermediate.dense");
    inter = 0.5 * inter * (1.0 + torch::erf(inter / std::sqrt(2.0)));
    x = layer_norm(linear(inter, w, p + "output.dense") + attn, w.at(p + "output.LayerNorm.weight"),
                   w.at(p + "output.LayerNorm.bias"));
  }
  return x;
}

std::map<std::string, at::Tensor> random_bert(int64_t vocab, int64_t dim, int64_t ffn, int64_t max_pos,
                                              int64_t layers) {
  std::map<std::string, at::Tensor> w;
  auto r = [](std::vector<int64_t> s) { return torch::randn(s) * 0.3; };
  w["embeddings.word_embeddings.weight"] = r({vocab, dim});
  w["embeddings.position_embeddings.weight"] = r({max_pos, dim});
  w["embeddings.token_type_embeddings.weight"] = r({2, dim});
  w["embeddings.LayerNorm.weight"] = 1 + r({dim});
  w["embeddings.LayerNorm.bias"] = r({dim});
  for (int64_t n = 0; n < layers; ++n) {
    const std::string p = "encoder.layer." + std::to_string(n) + ".";
    for (const char* m :
         {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
      w[p + m + ".weight"] = r({dim, dim});
      w[p + m + ".bias"] = r({dim});
    }
    w[p + "intermediate.dense.weight"] = r({ffn, dim});
    w[p + "intermediate.dense.bias"] = r({ffn});
    w[p + "output.dense.weight"] = r({dim, ffn});
    w[p + "output.dense.bias"] = r({dim});
    for (const char* m : {"attention.output.LayerNorm", "output.LayerNorm"}) {
      w[p + m + ".weight"] = 1 + r({dim});
      w[p + m + ".bias"] = r({dim});
    }
  }
  return w;
}

TEST(BertImport, MatchesHandWrittenBertForward) {
  torch::manual_seed(6);
  test::TempDir dir;
  const int64_t vocab = 40, dim = 12, ffn = 20, max_pos = 16, layers = 2, heads = 3;
  auto w = random_bert(vocab, dim, ffn, max_pos, layers);
  // Stored the way Hugging Face's BertForMaskedLM writes it: "bert." prefix plus extra heads.
  std::map<std::string, at::Tensor> file;
  for (const auto& [name, t] : w) file["bert." + name] = t;
  file["bert.pooler.dense.weight"] = torch::randn({dim, dim});
  file["cls.predictions.bias"] = torch::randn({vocab});
  const std::string path = dir.path("bert.safetensors");
  write_safetensors(path, file);

  BertImportReport report;
  TextEncoder enc = load_bert(path, heads, &report);
  EXPECT_EQ(enc->options.layers(), layers);
  EXPECT_EQ(enc->options.ffn_dim(), ffn);
  EXPECT_EQ(enc->options.max_len(), max_pos);
  EXPECT_EQ(report.loaded.size(), w.size());
  EXPECT_TRUE(report.missing.empty()) << report.summary();
  EXPECT_EQ(report.unexpected, (std::vector<std::string>{"bert.pooler.dense.weight", "cls.predictions.bias"}));

  enc->eval();
  auto ids = random_ids(3, 9, vocab);
  auto mask = torch::ones({3, 9}, torch::kBool);
  mask[1].slice(0, 6) = false;
  torch::NoGradGuard no_grad;
  auto ours = enc->forward(ids, mask);
  auto ref = bert_reference(w, ids, mask, layers, heads);
  EXPECT_TRUE(torch::allclose(ours.hidden, ref, 1e-4, 1e-5))
      << "max diff " << (ours.hidden - ref).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(ours.pooled, ref.select(1, 0), 1e-4, 1e-5));
}

TEST(BertImport, RefusesMismatchedShapesAndReportsMissing) {
  torch::manual_seed(7);
  auto w = random_bert(20, 8, 12, 10, 1);
  TextEncoder enc(bert_options(w, 2));
  auto bad = w;
  bad["encoder.layer.0.intermediate.dense.weight"] = torch::randn({13, 8});
  try {
    import_bert(*enc, bad);
    FAIL() << "expected a shape error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("encoder.layer.0.intermediate.dense.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[13, 8]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[12, 8]"), std::string::npos) << msg;
  }
  auto partial = w;
  partial.erase("encoder.layer.0.output.LayerNorm.bias");
  partial["encoder.layer.0.output.LayerNorm.gamma"] = partial.at("encoder.layer.0.output.LayerNorm.weight");
  partial.erase("encoder.layer.0.output.LayerNorm.weight");
  auto report = import_bert(*enc, partial);
  EXPECT_EQ(report.missing, (std::vector<std::string>{"layers.0.norm2.bias"}));
  EXPECT_TRUE(report.unexpected.empty());
  EXPECT_THROW(import_bert(*enc, partial, /*strict=*/true), Error);
  TextEncoder pre_ln(TextEncoderOptions(20, 8).layers(1).heads(2).ffn_dim(12).max_len(10));
  EXPECT_THROW(import_bert(*pre_ln, w), Error);
}

TEST(EmbeddingCache, RoundTripRetainAndRejections) {
  test::TempDir dir;
  const std::string path = dir.path("emb.cache");
  EXPECT_EQ(EmbeddingCache::load_or_empty(path, 3).size(), 0u);  // absent file: empty
  EmbeddingCache cache(3);
  const float a[3] = {1.5f, -2.0f, 0.25f}, b[3] = {0.0f, 7.0f, -1.0f};
  const uint64_t ha = text_hash("Toy Story", 17), hb = text_hash("Heat", 17);
  EXPECT_NE(ha, text_hash("Toy Story", 18));  // the salt (model fingerprint) changes the key
  EXPECT_NE(ha, text_hash("Toy story", 17));
  cache.put(ha, a);
  cache.put(hb, b);
  cache.save(path);
  auto back = EmbeddingCache::load_or_empty(path, 3);
  ASSERT_EQ(back.size(), 2u);
  ASSERT_NE(back.find(hb), nullptr);
  EXPECT_EQ(std::vector<float>(back.find(hb), back.find(hb) + 3), std::vector<float>(b, b + 3));
  EXPECT_EQ(back.find(text_hash("Casino", 17)), nullptr);
  back.retain({ha});
  EXPECT_EQ(back.size(), 1u);
  EXPECT_EQ(back.find(hb), nullptr);
  EXPECT_EQ(EmbeddingCache::load_or_empty(path, 4).size(), 0u);  // other dimension: not reusable
  std::string bytes = read_file(path);
  write_file_atomic(path, bytes.substr(0, bytes.size() - 2));
  EXPECT_THROW(EmbeddingCache::load_or_empty(path, 3), DataError);
  EXPECT_THROW(EmbeddingCache::load_or_empty(dir.write("x.cache", "garbage!garbage!garbage!"), 3), DataError);
}

}  // namespace
}  // namespace mtrec::nn
