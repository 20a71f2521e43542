#pragma once
// Import of pretrained BERT / MiniLM weights (Hugging Face names, with or without the "bert."
// prefix) into a post-LN TextEncoder.
//
//   mtrec::nn::BertImportReport report;
//   auto enc = mtrec::nn::load_bert("minilm/model.safetensors", /*heads=*/12, &report);
//   mtrec::log_info("{}", report.summary());        // loaded / missing / unexpected tensors
//
// Mapping (N = layer): embeddings.{word,position,token_type}_embeddings.weight ->
// {token,position,type}_embedding.weight; embeddings.LayerNorm -> embedding_norm;
// encoder.layer.N.attention.self.{query,key,value} -> layers.N.{query,key,value};
// attention.output.dense -> attn_out; attention.output.LayerNorm -> norm1;
// intermediate.dense -> ffn_in; output.dense -> ffn_out; output.LayerNorm -> norm2.
// Old checkpoints' LayerNorm.gamma/beta are read as weight/bias. A shape mismatch is an error
// naming the tensor and both shapes; tensors with no counterpart (pooler, cls.* heads,
// position_ids) are reported as unexpected, parameters left untouched as missing.
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

#include "mtrec/nn/text_encoder.h"

namespace mtrec::nn {

struct BertImportReport {
  std::vector<std::string> loaded;      // encoder parameter names that received a tensor
  std::vector<std::string> missing;     // encoder parameters with no tensor in the checkpoint
  std::vector<std::string> unexpected;  // checkpoint tensors with no encoder parameter
  std::string summary() const;
};

/// The encoder options a BERT checkpoint implies (vocab, dim, layers, ffn_dim, max_len,
/// type_vocab_size from the tensor shapes; post-LN, LayerNorm eps 1e-12, CLS pooling). The
/// number of heads is not recoverable from the weights (config.json: num_attention_heads).
TextEncoderOptions bert_options(const std::map<std::string, at::Tensor>& weights, int64_t heads);

/// Copies the BERT tensors into `encoder` (which must be post-LN); with `strict`, any missing
/// encoder parameter is an error too.
BertImportReport import_bert(TextEncoderImpl& encoder, const std::map<std::string, at::Tensor>& weights,
                             bool strict = false);

/// Reads a BERT safetensors file, builds the encoder with bert_options() and imports it.
TextEncoder load_bert(const std::string& safetensors_path, int64_t heads, BertImportReport* report = nullptr);

}  // namespace mtrec::nn
