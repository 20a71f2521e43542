// Tokenizer and safetensors throughput on MovieLens 100K titles.
//   ./build/bench/text_bench [ML100K_DIR]   (default ../shared/data/ml-100k)
// Prints: sentencepiece training time (unigram, bpe), encode_batch throughput (sentencepiece and
// WordPiece), safetensors write/read throughput for a BERT-base-sized F16 embedding table.
#include "mtrec/core/io.h"
#include "mtrec/text/safetensors.h"
#include "mtrec/text/tokenizer.h"

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// u.item is Latin-1: title is field 2 of '|'-separated lines.
std::vector<std::string> read_titles(const std::string& dir) {
  std::istringstream in(mtrec::read_file(dir + "/u.item"));
  std::vector<std::string> titles;
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find('|');
    auto b = line.find('|', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string utf8;
    for (unsigned char c : line.substr(a + 1, b - a - 1)) {
      if (c < 0x80) {
        utf8 += static_cast<char>(c);
      } else {
        utf8 += static_cast<char>(0xC0 | (c >> 6));
        utf8 += static_cast<char>(0x80 | (c & 0x3F));
      }
    }
    titles.push_back(utf8);
  }
  return titles;
}

template <typename F>
double median_seconds(int reps, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(seconds_since(t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "../shared/data/ml-100k";
  CLI::App app{"sentencepiece train / encode speed on the ML-100K item titles"};
  auto* positional = app.add_option("dir", dir, "MovieLens 100K folder (as --data-dir)");
  app.add_option("--data-dir", dir, "MovieLens 100K folder (holding u.item)")
      ->excludes(positional)
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!std::filesystem::exists(dir + "/u.item")) {
    std::fprintf(stderr, "text_bench: %s/u.item not found: --data-dir must name the MovieLens 100K folder\n",
                 dir.c_str());
    return 1;
  }
  torch::set_num_threads(1);
  std::vector<std::string> titles = read_titles(dir);
  std::printf("protocol: ML-100K item titles (%zu), seed 7, CPU, 1 thread, medians of 5 runs\n", titles.size());
  std::printf("%-44s %12s\n", "step", "value");

  for (const std::string type : {"unigram", "bpe"}) {
    auto opts = mtrec::SentencePieceTrainOptions().vocab_size(2000).model_type(type).seed(7);
    std::optional<mtrec::SentencePieceTokenizer> tok;
    double train_s = median_seconds(3, [&] { tok = mtrec::SentencePieceTokenizer::train(titles, opts); });
    double enc_s = median_seconds(5, [&] { tok->encode_batch(titles, 32); });
    size_t pieces = 0;
    for (const auto& t : titles) pieces += tok->encode(t).size();
    std::printf("%-44s %10.3f s\n", ("sentencepiece " + type + " train (vocab 2000)").c_str(), train_s);
    std::printf("%-44s %10.0f /s\n", ("sentencepiece " + type + " encode_batch titles").c_str(), titles.size() / enc_s);
    std::printf("%-44s %12.2f\n", ("sentencepiece " + type + " pieces per title").c_str(),
                static_cast<double>(pieces) / titles.size());
  }

  // WordPiece vocabulary: the titles' lower-cased words plus every character alone and as "##c".
  std::set<std::string> pieces = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  mtrec::WordPieceTokenizer seed_tok({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"});
  for (const auto& t : titles)
    for (const auto& w : seed_tok.basic_tokenize(t)) {
      if (w.size() > 4) pieces.insert(w.substr(0, 4));
      for (size_t i = 0; i < w.size(); ++i) pieces.insert("##" + w.substr(i, 1));
      pieces.insert(w.substr(0, 1));
    }
  mtrec::WordPieceTokenizer wp(std::vector<std::string>(pieces.begin(), pieces.end()));
  double wp_s = median_seconds(5, [&] { wp.encode_batch(titles, 32); });
  std::printf("%-44s %10.0f /s\n", "wordpiece encode_batch titles", titles.size() / wp_s);

  // safetensors: a 30522 x 768 F16 table (BERT-base word embeddings, 47 MB).
  std::string path = (std::filesystem::temp_directory_path() / "mtrec_text_bench.safetensors").string();
  at::Tensor emb = torch::randn({30522, 768}).to(torch::kHalf);
  double mb = emb.numel() * 2 / 1e6;
  double w_s = median_seconds(5, [&] { mtrec::write_safetensors(path, {{"emb", emb}}); });
  double r_s = median_seconds(5, [&] { mtrec::read_safetensors(path); });
  double rk_s =
      median_seconds(5, [&] { mtrec::read_safetensors(path, mtrec::SafetensorsReadOptions().keep_dtype(true)); });
  std::filesystem::remove(path);
  std::printf("%-44s %10.0f MB/s\n", "safetensors write F16 (47 MB)", mb / w_s);
  std::printf("%-44s %10.0f MB/s\n", "safetensors read F16 -> float32", mb / r_s);
  std::printf("%-44s %10.0f MB/s\n", "safetensors read F16 keep dtype", mb / rk_s);
  return 0;
}
