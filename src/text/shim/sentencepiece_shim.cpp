// libmtrec_sentencepiece.so: sentencepiece behind a C interface (see sentencepiece_shim.h).
// Only C types cross the boundary, and every buffer is freed here, so the module may carry its
// own protobuf (and, opened with dlmopen in a namespace of its own, its own libstdc++) without
// mixing allocations or ABIs; the fallback opening is RTLD_LOCAL|RTLD_DEEPBIND.
#include "sentencepiece_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <new>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

// Not in sentencepiece's public headers, but exported (0.1.9x): the trainer's log threshold.
namespace sentencepiece::logging {
void SetMinLogLevel(int v);
}

struct mtrec_spm {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

char* copy_out(const std::string& s, size_t* len = nullptr) {
  char* buf = static_cast<char*>(std::malloc(s.size() + 1));
  if (buf == nullptr) return nullptr;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  if (len != nullptr) *len = s.size();
  return buf;
}

void set_err(char** err, const std::string& msg) {
  if (err != nullptr) *err = copy_out(msg);
}

// Feeds in-memory sentences to the trainer without a temporary corpus file.
class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  VectorIterator(const char* const* texts, const size_t* lens, size_t n) : texts_(texts), lens_(lens), n_(n) {
    skip_empty();
  }
  bool done() const override { return i_ >= n_; }
  void Next() override {
    ++i_;
    skip_empty();
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  void skip_empty() {
    while (i_ < n_ && lens_[i_] == 0) ++i_;
    if (i_ < n_) value_.assign(texts_[i_], lens_[i_]);
  }
  const char* const* texts_;
  const size_t* lens_;
  size_t n_, i_ = 0;
  std::string value_;
};

// The trainer's random seed is process-global inside sentencepiece.
std::mutex train_mutex;

// RTLD_DEEPBIND pitfall: an executable that uses std::cout/std::cerr holds copy-relocated
// instances, and libstdc++'s ios_base::Init constructs only those. Code in this DEEPBIND group
// (sentencepiece's LOG) binds to libstdc++'s own, never-constructed instances and would crash
// on first use. Construct them over the process's stream buffers, as ios_base::Init would.
void adopt_std_stream(std::ostream& local, const char* symbol, bool unitbuf) {
  auto* global = static_cast<std::ostream*>(dlsym(RTLD_DEFAULT, symbol));
  if (global == nullptr || global == &local) return;  // no copy relocation: already constructed
  auto* s = new (&local) std::ostream(global->rdbuf());
  if (unitbuf) s->setf(std::ios_base::unitbuf);
}

struct StreamFix {
  StreamFix() {
    adopt_std_stream(std::cout, "_ZSt4cout", false);
    adopt_std_stream(std::cerr, "_ZSt4cerr", true);
    adopt_std_stream(std::clog, "_ZSt4clog", false);
    sentencepiece::logging::SetMinLogLevel(2);  // errors come back as statuses; no INFO chatter
  }
} stream_fix;

// A new model loaded by `load(processor)`; nullptr and *err on failure.
template <typename Load>
mtrec_spm* load_with(Load&& load, char** err) {
  try {
    auto model = std::make_unique<mtrec_spm>();
    auto status = load(model->processor);
    if (!status.ok()) {
      set_err(err, status.ToString());
      return nullptr;
    }
    return model.release();
  } catch (const std::exception& e) {
    set_err(err, e.what());
    return nullptr;
  }
}

}  // namespace

extern "C" {

int mtrec_spm_abi_version(void) { return MTREC_SPM_ABI_VERSION; }

mtrec_spm* mtrec_spm_train(const char* const* texts, const size_t* lens, size_t n, const char* args, uint32_t seed,
                           char** err) {
  try {
    std::lock_guard<std::mutex> lock(train_mutex);
    sentencepiece::SetRandomGeneratorSeed(seed);
    std::string serialized;
    VectorIterator it(texts, lens, n);
    auto status = sentencepiece::SentencePieceTrainer::Train(args, n > 0 ? &it : nullptr, &serialized);
    if (!status.ok()) {
      set_err(err, std::string("sentencepiece training failed: ") + status.ToString());
      return nullptr;
    }
    auto model = std::make_unique<mtrec_spm>();
    status = model->processor.LoadFromSerializedProto(serialized);
    if (!status.ok()) {
      set_err(err, std::string("sentencepiece could not load the model it trained: ") + status.ToString());
      return nullptr;
    }
    return model.release();
  } catch (const std::exception& e) {
    set_err(err, std::string("sentencepiece training failed: ") + e.what());
    return nullptr;
  }
}

mtrec_spm* mtrec_spm_load_file(const char* path, char** err) {
  return load_with([&](auto& p) { return p.Load(path); }, err);
}

mtrec_spm* mtrec_spm_load_bytes(const char* data, size_t len, char** err) {
  return load_with([&](auto& p) { return p.LoadFromSerializedProto(std::string(data, len)); }, err);
}

void mtrec_spm_free(mtrec_spm* model) { delete model; }
void mtrec_spm_free_buffer(void* buffer) { std::free(buffer); }

int mtrec_spm_encode(const mtrec_spm* model, const char* text, size_t len, int32_t** ids, size_t* n, char** err) {
  try {
    std::vector<int> out;
    auto status = model->processor.Encode(std::string(text, len), &out);
    if (!status.ok()) {
      set_err(err, status.ToString());
      return 0;
    }
    *n = out.size();
    *ids = static_cast<int32_t*>(std::malloc(sizeof(int32_t) * (out.empty() ? 1 : out.size())));
    for (size_t i = 0; i < out.size(); ++i) (*ids)[i] = out[i];
    return 1;
  } catch (const std::exception& e) {
    set_err(err, e.what());
    return 0;
  }
}

int mtrec_spm_decode(const mtrec_spm* model, const int32_t* ids, size_t n, char** out, size_t* out_len, char** err) {
  try {
    std::vector<int> in(ids, ids + n);
    std::string text;
    auto status = model->processor.Decode(in, &text);
    if (!status.ok()) {
      set_err(err, status.ToString());
      return 0;
    }
    *out = copy_out(text, out_len);
    return 1;
  } catch (const std::exception& e) {
    set_err(err, e.what());
    return 0;
  }
}

int32_t mtrec_spm_vocab_size(const mtrec_spm* model) { return model->processor.GetPieceSize(); }

int32_t mtrec_spm_piece_to_id(const mtrec_spm* model, const char* piece, size_t len) {
  // PieceToId answers unk_id for unknown pieces; tell those apart from the unk piece itself.
  std::string p(piece, len);
  int id = model->processor.PieceToId(p);
  if (id < 0 || id >= model->processor.GetPieceSize()) return -1;
  return model->processor.IdToPiece(id) == p ? id : -1;
}

int mtrec_spm_id_to_piece(const mtrec_spm* model, int32_t id, char** out, size_t* out_len, char** err) {
  if (id < 0 || id >= model->processor.GetPieceSize()) {
    set_err(err, "piece id " + std::to_string(id) + " out of range [0, " +
                     std::to_string(model->processor.GetPieceSize()) + ")");
    return 0;
  }
  *out = copy_out(model->processor.IdToPiece(id), out_len);
  return 1;
}

int32_t mtrec_spm_special_id(const mtrec_spm* model, int which) {
  switch (which) {
    case 0:
      return model->processor.pad_id();
    case 1:
      return model->processor.unk_id();
    case 2:
      return model->processor.bos_id();
    case 3:
      return model->processor.eos_id();
    default:
      return -1;
  }
}

int mtrec_spm_serialize(const mtrec_spm* model, char** out, size_t* out_len, char** err) {
  try {
    *out = copy_out(model->processor.serialized_model_proto(), out_len);
    return 1;
  } catch (const std::exception& e) {
    set_err(err, e.what());
    return 0;
  }
}

}  // extern "C"
