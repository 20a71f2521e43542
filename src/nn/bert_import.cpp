#include "mtrec/nn/bert_import.h"

#include <torch/torch.h>

#include <sstream>

#include "mtrec/core/check.h"
#include "mtrec/text/safetensors.h"

namespace mtrec::nn {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

/// The checkpoint name without the "bert." prefix and with gamma/beta read as weight/bias.
std::string normalise(std::string name) {
  if (starts_with(name, "bert.")) name = name.substr(5);
  auto replace_suffix = [&](const std::string& from, const std::string& to) {
    if (name.size() >= from.size() && name.compare(name.size() - from.size(), from.size(), from) == 0) {
      name = name.substr(0, name.size() - from.size()) + to;
    }
  };
  replace_suffix("LayerNorm.gamma", "LayerNorm.weight");
  replace_suffix("LayerNorm.beta", "LayerNorm.bias");
  return name;
}

/// Our parameter name for a normalised BERT name, or "" when it has no counterpart.
std::string translate(const std::string& name) {
  static const std::map<std::string, std::string> embeddings = {
      {"embeddings.word_embeddings.weight", "token_embedding.weight"},
      {"embeddings.position_embeddings.weight", "position_embedding.weight"},
      {"embeddings.token_type_embeddings.weight", "type_embedding.weight"},
      {"embeddings.LayerNorm.weight", "embedding_norm.weight"},
      {"embeddings.LayerNorm.bias", "embedding_norm.bias"},
  };
  if (auto it = embeddings.find(name); it != embeddings.end()) return it->second;
  const std::string layer = "encoder.layer.";
  if (!starts_with(name, layer)) return "";
  size_t dot = name.find('.', layer.size());
  if (dot == std::string::npos) return "";
  const std::string index = name.substr(layer.size(), dot - layer.size());
  if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos) return "";
  const std::string rest = name.substr(dot + 1);
  static const std::vector<std::pair<std::string, std::string>> parts = {
      {"attention.self.query.", "query."},
      {"attention.self.key.", "key."},
      {"attention.self.value.", "value."},
      {"attention.output.dense.", "attn_out."},
      {"attention.output.LayerNorm.", "norm1."},
      {"intermediate.dense.", "ffn_in."},
      {"output.dense.", "ffn_out."},
      {"output.LayerNorm.", "norm2."},
  };
  for (const auto& [from, to] : parts) {
    if (starts_with(rest, from)) {
      const std::string leaf = rest.substr(from.size());
      if (leaf != "weight" && leaf != "bias") return "";
      return "layers." + index + "." + to + leaf;
    }
  }
  return "";
}

const at::Tensor& find_weight(const std::map<std::string, at::Tensor>& w, const std::string& normalised_name) {
  for (const auto& [name, t] : w) {
    if (normalise(name) == normalised_name) return t;
  }
  MTREC_CHECK(false, "BERT checkpoint has no tensor '", normalised_name, "' (with or without the 'bert.' prefix)");
  static at::Tensor none;
  return none;
}

}  // namespace

std::string BertImportReport::summary() const {
  std::ostringstream os;
  os << "BERT import: " << loaded.size() << " tensors loaded, " << missing.size() << " missing, " << unexpected.size()
     << " unexpected";
  auto list = [&](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    os << "; " << what << ":";
    for (const auto& n : names) os << " " << n;
  };
  list("missing", missing);
  list("unexpected", unexpected);
  return os.str();
}

TextEncoderOptions bert_options(const std::map<std::string, at::Tensor>& w, int64_t heads) {
  const at::Tensor& word = find_weight(w, "embeddings.word_embeddings.weight");
  const at::Tensor& pos = find_weight(w, "embeddings.position_embeddings.weight");
  MTREC_CHECK(word.dim() == 2 && pos.dim() == 2, "BERT checkpoint: embeddings must be 2-D, got word ",
              shape_str(word.sizes()), " position ", shape_str(pos.sizes()));
  int64_t layers = 0;
  while (true) {
    bool found = false;
    const std::string prefix = "encoder.layer." + std::to_string(layers) + ".";
    for (const auto& [name, t] : w) found = found || starts_with(normalise(name), prefix);
    if (!found) break;
    ++layers;
  }
  TextEncoderOptions o(word.size(0), word.size(1));
  o.heads(heads)
      .layers(layers)
      .max_len(pos.size(0))
      .pre_layer_norm(false)
      .layer_norm_eps(1e-12)
      .pooling(Pooling::Cls)
      .out_dim(0);
  if (layers > 0) o.ffn_dim(find_weight(w, "encoder.layer.0.intermediate.dense.weight").size(0));
  for (const auto& [name, t] : w) {
    if (normalise(name) == "embeddings.token_type_embeddings.weight") o.type_vocab_size(t.size(0));
  }
  return o;
}

BertImportReport import_bert(TextEncoderImpl& encoder, const std::map<std::string, at::Tensor>& w, bool strict) {
  MTREC_CHECK(!encoder.options.pre_layer_norm(),
              "BERT import needs a post-LN encoder (TextEncoderOptions::pre_layer_norm(false))");
  auto params = encoder.named_parameters(/*recurse=*/true);
  BertImportReport report;
  std::map<std::string, bool> assigned;
  torch::NoGradGuard no_grad;
  for (const auto& [name, t] : w) {
    const std::string ours = translate(normalise(name));
    at::Tensor* target = ours.empty() ? nullptr : params.find(ours);
    if (!target) {
      report.unexpected.push_back(name);
      continue;
    }
    MTREC_CHECK(target->sizes() == t.sizes(), "BERT tensor '", name, "' has shape ", shape_str(t.sizes()),
                " but encoder parameter '", ours, "' has shape ", shape_str(target->sizes()));
    MTREC_CHECK(!assigned[ours], "BERT checkpoint maps two tensors onto '", ours, "' (second: '", name, "')");
    target->copy_(t);  // copy_ converts dtype and device
    assigned[ours] = true;
    report.loaded.push_back(ours);
  }
  for (const auto& item : params) {
    if (!assigned[item.key()]) report.missing.push_back(item.key());
  }
  MTREC_CHECK(!strict || report.missing.empty(), "strict BERT import: ", report.summary());
  return report;
}

TextEncoder load_bert(const std::string& path, int64_t heads, BertImportReport* report) {
  const auto weights = read_safetensors(path);
  TextEncoder encoder(bert_options(weights, heads));
  BertImportReport r;
  try {
    r = import_bert(*encoder, weights);
  } catch (const Error& e) {
    MTREC_CHECK(false, "'", path, "': ", e.what());
  }
  if (report) *report = std::move(r);
  return encoder;
}

}  // namespace mtrec::nn
