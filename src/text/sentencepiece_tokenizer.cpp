// SentencePieceTokenizer: sentencepiece through the libmtrec_sentencepiece.so shim (see
// docs/DEVELOPING.md, "sentencepiece and LibTorch in one process").
#include "mtrec/text/tokenizer.h"

#include "mtrec/core/check.h"
#include "mtrec/core/io.h"
#include "shim/sentencepiece_shim.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define MTREC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MTREC_ASAN 1
#endif
#endif

namespace mtrec {
namespace {

// The shim's entry points, resolved once per process. The module is never closed: unloading a
// library that carries protobuf runs its static destructors while other code may still run.
struct Shim {
  decltype(&mtrec_spm_train) train = nullptr;
  decltype(&mtrec_spm_load_file) load_file = nullptr;
  decltype(&mtrec_spm_load_bytes) load_bytes = nullptr;
  decltype(&mtrec_spm_free) free_model = nullptr;
  decltype(&mtrec_spm_free_buffer) free_buffer = nullptr;
  decltype(&mtrec_spm_encode) encode = nullptr;
  decltype(&mtrec_spm_decode) decode = nullptr;
  decltype(&mtrec_spm_vocab_size) vocab_size = nullptr;
  decltype(&mtrec_spm_piece_to_id) piece_to_id = nullptr;
  decltype(&mtrec_spm_id_to_piece) id_to_piece = nullptr;
  decltype(&mtrec_spm_special_id) special_id = nullptr;
  decltype(&mtrec_spm_serialize) serialize = nullptr;
  std::string error;  // why the shim is unusable; empty when loaded
};

constexpr const char* kModuleName = "libmtrec_sentencepiece.so";

[[maybe_unused]] std::string dir_of_libmtrec() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&sentencepiece_available), &info) == 0 || info.dli_fname == nullptr) return "";
  std::string path = info.dli_fname;
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

template <typename F>
[[maybe_unused]] bool resolve(void* lib, const char* name, F& fn, std::string& error) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (fn == nullptr) error = std::string("symbol ") + name + " missing from the sentencepiece module";
  return fn != nullptr;
}

Shim load_shim() {
  Shim s;
#ifdef MTREC_ASAN
  s.error =
      "SentencePieceTokenizer is unavailable in AddressSanitizer builds: its module must be opened "
      "in a link-map namespace of its own (dlmopen) or with RTLD_DEEPBIND, to keep sentencepiece's "
      "protobuf apart from LibTorch's, and ASan supports neither. Use a non-ASan build for "
      "sentencepiece tokenization.";
  return s;
#else
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("MTREC_SENTENCEPIECE_MODULE"); env != nullptr && *env != '\0') {
    candidates.push_back(env);  // explicit choice: no silent fallback
  } else {
    std::string dir = dir_of_libmtrec();
    if (!dir.empty()) candidates.push_back(dir + "/" + kModuleName);
    candidates.push_back(kModuleName);  // the loader's search path (LD_LIBRARY_PATH, ...)
  }
  void* lib = nullptr;
  std::string tried;
  // First choice: a link-map namespace of its own (dlmopen), where the module gets its own
  // copies of libstdc++ and protobuf and nothing it binds to can be the process's. RTLD_DEEPBIND
  // (the fallback) shares the process's libstdc++ and breaks on toolchains whose executables
  // copy-relocate std::cout/std::cerr: the module then writes through libstdc++'s unconstructed
  // originals during its static initialisation. MTREC_SENTENCEPIECE_DEEPBIND=1 forces the fallback.
  const char* force_deepbind = std::getenv("MTREC_SENTENCEPIECE_DEEPBIND");
  const bool try_namespace = force_deepbind == nullptr || std::string(force_deepbind) != "1";
  for (const auto& path : candidates) {
    if (try_namespace) {
      lib = dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib != nullptr) break;
      const char* e = dlerror();
      tried += "\n  " + path + " (dlmopen): " + (e ? e : "not found");
    }
    lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (lib != nullptr) break;
    const char* e = dlerror();
    tried += "\n  " + path + " (dlopen, RTLD_DEEPBIND): " + (e ? e : "not found");
  }
  if (lib == nullptr) {
    s.error = std::string("cannot load the sentencepiece module ") + kModuleName +
              " (built and installed beside libmtrec; or set MTREC_SENTENCEPIECE_MODULE to its path). Tried:" + tried;
    return s;
  }
  decltype(&mtrec_spm_abi_version) abi = nullptr;
  std::string& err = s.error;
  if (!resolve(lib, "mtrec_spm_abi_version", abi, err)) return s;
  if (abi() != MTREC_SPM_ABI_VERSION) {
    err = "sentencepiece module ABI version " + std::to_string(abi()) + " does not match libmtrec's " +
          std::to_string(MTREC_SPM_ABI_VERSION) + " (a stale libmtrec_sentencepiece.so?)";
    return s;
  }
  bool ok =
      resolve(lib, "mtrec_spm_train", s.train, err) && resolve(lib, "mtrec_spm_load_file", s.load_file, err) &&
      resolve(lib, "mtrec_spm_load_bytes", s.load_bytes, err) && resolve(lib, "mtrec_spm_free", s.free_model, err) &&
      resolve(lib, "mtrec_spm_free_buffer", s.free_buffer, err) && resolve(lib, "mtrec_spm_encode", s.encode, err) &&
      resolve(lib, "mtrec_spm_decode", s.decode, err) && resolve(lib, "mtrec_spm_vocab_size", s.vocab_size, err) &&
      resolve(lib, "mtrec_spm_piece_to_id", s.piece_to_id, err) &&
      resolve(lib, "mtrec_spm_id_to_piece", s.id_to_piece, err) &&
      resolve(lib, "mtrec_spm_special_id", s.special_id, err) && resolve(lib, "mtrec_spm_serialize", s.serialize, err);
  (void)ok;
  return s;
#endif
}

const Shim& shim() {
  static const Shim s = load_shim();
  MTREC_CHECK(s.error.empty(), s.error);
  return s;
}

// Takes ownership of a shim buffer and returns it as a string.
std::string take_string(char* buf, size_t len) {
  std::string out = buf ? std::string(buf, len) : std::string();
  shim().free_buffer(buf);
  return out;
}
std::string take_error(char* err) {
  if (err == nullptr) return "unknown error";
  return take_string(err, std::char_traits<char>::length(err));
}

constexpr const char* kCls = "[CLS]";
constexpr const char* kSep = "[SEP]";
constexpr const char* kMask = "[MASK]";

}  // namespace

struct SentencePieceTokenizer::Handle {
  mtrec_spm* model = nullptr;
  ~Handle() {
    if (model != nullptr) shim().free_model(model);
  }
};

bool sentencepiece_available(std::string* why) {
  try {
    shim();
    return true;
  } catch (const Error& e) {
    if (why != nullptr) *why = e.what();
    return false;
  }
}

SentencePieceTokenizer::SentencePieceTokenizer(std::shared_ptr<Handle> handle, const std::string& origin)
    : handle_(std::move(handle)) {
  const Shim& s = shim();
  vocab_size_ = s.vocab_size(handle_->model);
  special_.pad = s.special_id(handle_->model, 0);
  special_.unk = s.special_id(handle_->model, 1);
  special_.cls = s.piece_to_id(handle_->model, kCls, 5);
  special_.sep = s.piece_to_id(handle_->model, kSep, 5);
  special_.mask = s.piece_to_id(handle_->model, kMask, 6);
  MTREC_CHECK(special_.pad >= 0 && special_.unk >= 0 && special_.cls >= 0 && special_.sep >= 0 && special_.mask >= 0,
              origin, ": sentencepiece model lacks special tokens (pad id ", special_.pad, ", unk id ", special_.unk,
              ", [CLS] ", special_.cls, ", [SEP] ", special_.sep, ", [MASK] ", special_.mask,
              "); train it with SentencePieceTokenizer::train or with --pad_id and control symbols "
              "[CLS],[SEP],[MASK]");
}

namespace {
std::string trainer_args(const SentencePieceTrainOptions& o) {
  MTREC_CHECK(o.vocab_size() > 5, "sentencepiece vocab_size must exceed the 5 special tokens, got ", o.vocab_size());
  MTREC_CHECK(o.model_type() == "unigram" || o.model_type() == "bpe",
              "sentencepiece model_type must be \"unigram\" or \"bpe\", got \"", o.model_type(), "\"");
  MTREC_CHECK(o.character_coverage() > 0 && o.character_coverage() <= 1, "character_coverage must be in (0, 1], got ",
              o.character_coverage());
  MTREC_CHECK(o.max_sentence_length() > 0, "max_sentence_length must be > 0, got ", o.max_sentence_length());
  MTREC_CHECK(o.input_sentence_size() >= 0, "input_sentence_size must be >= 0, got ", o.input_sentence_size());
  MTREC_CHECK(o.num_threads() >= 1, "num_threads must be >= 1, got ", o.num_threads());
  return detail::str_cat("--model_type=", o.model_type(), " --vocab_size=", o.vocab_size(),
                         " --character_coverage=", o.character_coverage(),
                         " --max_sentence_length=", o.max_sentence_length(),
                         " --input_sentence_size=", o.input_sentence_size(),
                         " --shuffle_input_sentence=true --hard_vocab_limit=", o.hard_vocab_limit() ? "true" : "false",
                         " --num_threads=", o.num_threads(),
                         " --pad_id=0 --unk_id=1 --bos_id=-1 --eos_id=-1 --pad_piece=[PAD] --unk_piece=[UNK]"
                         " --control_symbols=[CLS],[SEP],[MASK] --minloglevel=2");
}

uint32_t fold_seed(uint64_t seed) {
  auto s = static_cast<uint32_t>(seed ^ (seed >> 32));
  // sentencepiece reads 0xffffffff as "seed from std::random_device".
  return s == 0xffffffffu ? 0x9e3779b9u : s;
}
}  // namespace

SentencePieceTokenizer SentencePieceTokenizer::train(const std::vector<std::string>& texts,
                                                     const SentencePieceTrainOptions& options) {
  const Shim& s = shim();
  std::string args = trainer_args(options);
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const auto& t : texts) {
    if (t.empty()) continue;
    ptrs.push_back(t.data());
    lens.push_back(t.size());
  }
  MTREC_CHECK(!ptrs.empty(), "sentencepiece training needs at least one non-empty text, got ", texts.size(), " texts");
  char* err = nullptr;
  mtrec_spm* model = s.train(ptrs.data(), lens.data(), ptrs.size(), args.c_str(), fold_seed(options.seed()), &err);
  MTREC_CHECK(model != nullptr, take_error(err), " (", ptrs.size(), " texts; vocab_size ", options.vocab_size(),
              ", model_type ", options.model_type(), ")");
  auto handle = std::make_shared<Handle>();
  handle->model = model;
  return SentencePieceTokenizer(std::move(handle), "trained model");
}

SentencePieceTokenizer SentencePieceTokenizer::train_from_file(const std::string& corpus_path,
                                                               const SentencePieceTrainOptions& options) {
  // Read here so that a missing file is reported by us, with its name, and the in-memory path
  // (no sentencepiece file flags with spaces or commas in names) serves both.
  std::string corpus = read_file(corpus_path);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < corpus.size()) {
    size_t end = corpus.find('\n', start);
    if (end == std::string::npos) end = corpus.size();
    size_t stop = end;
    if (stop > start && corpus[stop - 1] == '\r') --stop;
    if (stop > start) lines.emplace_back(corpus, start, stop - start);
    start = end + 1;
  }
  MTREC_CHECK(!lines.empty(), corpus_path, ": corpus has no non-empty line");
  return train(lines, options);
}

SentencePieceTokenizer SentencePieceTokenizer::load(const std::string& path) {
  // Read the bytes ourselves: a clear "cannot open PATH" and no path quoting issues.
  std::string bytes = read_file(path);
  char* err = nullptr;
  mtrec_spm* model = shim().load_bytes(bytes.data(), bytes.size(), &err);
  MTREC_CHECK(model != nullptr, path, ": not a sentencepiece model: ", take_error(err));
  auto handle = std::make_shared<Handle>();
  handle->model = model;
  return SentencePieceTokenizer(std::move(handle), path);
}

SentencePieceTokenizer SentencePieceTokenizer::from_serialized(const std::string& model_bytes) {
  char* err = nullptr;
  mtrec_spm* model = shim().load_bytes(model_bytes.data(), model_bytes.size(), &err);
  MTREC_CHECK(model != nullptr, "serialized sentencepiece model (", model_bytes.size(),
              " bytes) does not load: ", take_error(err));
  auto handle = std::make_shared<Handle>();
  handle->model = model;
  return SentencePieceTokenizer(std::move(handle), "serialized model");
}

std::string SentencePieceTokenizer::serialized() const {
  char* out = nullptr;
  size_t len = 0;
  char* err = nullptr;
  MTREC_CHECK(shim().serialize(handle_->model, &out, &len, &err) != 0,
              "cannot serialize sentencepiece model: ", take_error(err));
  return take_string(out, len);
}

void SentencePieceTokenizer::save(const std::string& path) const { write_file_atomic(path, serialized()); }

std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view text) const {
  int32_t* ids = nullptr;
  size_t n = 0;
  char* err = nullptr;
  MTREC_CHECK(shim().encode(handle_->model, text.data(), text.size(), &ids, &n, &err) != 0,
              "sentencepiece encode failed on a ", text.size(), "-byte text: ", take_error(err));
  std::vector<int64_t> out(ids, ids + n);
  shim().free_buffer(ids);
  return out;
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int32_t> keep;
  keep.reserve(ids.size());
  for (int64_t id : ids) {
    MTREC_CHECK(id >= 0 && id < vocab_size_, "token id ", id, " out of range [0, ", vocab_size_, ")");
    if (id == special_.unk || !is_special(id)) keep.push_back(static_cast<int32_t>(id));
  }
  char* out = nullptr;
  size_t len = 0;
  char* err = nullptr;
  MTREC_CHECK(shim().decode(handle_->model, keep.data(), keep.size(), &out, &len, &err) != 0,
              "sentencepiece decode failed: ", take_error(err));
  return take_string(out, len);
}

int64_t SentencePieceTokenizer::vocab_size() const { return vocab_size_; }

std::string SentencePieceTokenizer::id_to_piece(int64_t id) const {
  MTREC_CHECK(id >= 0 && id < vocab_size_, "token id ", id, " out of range [0, ", vocab_size_, ")");
  char* out = nullptr;
  size_t len = 0;
  char* err = nullptr;
  MTREC_CHECK(shim().id_to_piece(handle_->model, static_cast<int32_t>(id), &out, &len, &err) != 0, take_error(err));
  return take_string(out, len);
}

int64_t SentencePieceTokenizer::piece_to_id(std::string_view piece) const {
  return shim().piece_to_id(handle_->model, piece.data(), piece.size());
}

std::vector<std::string> SentencePieceTokenizer::encode_pieces(std::string_view text) const {
  std::vector<std::string> pieces;
  for (int64_t id : encode(text)) pieces.push_back(id_to_piece(id));
  return pieces;
}

}  // namespace mtrec
