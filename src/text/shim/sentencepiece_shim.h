// The C interface of libmtrec_sentencepiece.so, the module that holds sentencepiece (and its
// own protobuf) apart from LibTorch's. Shared by the module and by the loader in
// src/text/sentencepiece_tokenizer.cpp, which resolves these names with dlsym.
// Conventions: functions that can fail return 0 / nullptr and set *err to a malloc'ed message;
// every buffer handed out (err, strings, id arrays) is freed with mtrec_spm_free_buffer.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define MTREC_SPM_ABI_VERSION 1

#define MTREC_SPM_API __attribute__((visibility("default")))

extern "C" {
typedef struct mtrec_spm mtrec_spm;

MTREC_SPM_API int mtrec_spm_abi_version(void);
/// Trains from `n` in-memory sentences (texts/lens), or from the --input file named in `args`
/// when n == 0. `args` are sentencepiece trainer flags ("--vocab_size=200 --model_type=bpe ...").
MTREC_SPM_API mtrec_spm* mtrec_spm_train(const char* const* texts, const size_t* lens, size_t n, const char* args,
                                         uint32_t seed, char** err);
MTREC_SPM_API mtrec_spm* mtrec_spm_load_file(const char* path, char** err);
MTREC_SPM_API mtrec_spm* mtrec_spm_load_bytes(const char* data, size_t len, char** err);
MTREC_SPM_API void mtrec_spm_free(mtrec_spm* model);
MTREC_SPM_API void mtrec_spm_free_buffer(void* buffer);

MTREC_SPM_API int mtrec_spm_encode(const mtrec_spm* model, const char* text, size_t len, int32_t** ids, size_t* n,
                                   char** err);
MTREC_SPM_API int mtrec_spm_decode(const mtrec_spm* model, const int32_t* ids, size_t n, char** out, size_t* out_len,
                                   char** err);
MTREC_SPM_API int32_t mtrec_spm_vocab_size(const mtrec_spm* model);
/// -1 when `piece` is not in the vocabulary.
MTREC_SPM_API int32_t mtrec_spm_piece_to_id(const mtrec_spm* model, const char* piece, size_t len);
MTREC_SPM_API int mtrec_spm_id_to_piece(const mtrec_spm* model, int32_t id, char** out, size_t* out_len, char** err);
/// which: 0 pad, 1 unk, 2 bos, 3 eos (-1 when the model has none).
MTREC_SPM_API int32_t mtrec_spm_special_id(const mtrec_spm* model, int which);
MTREC_SPM_API int mtrec_spm_serialize(const mtrec_spm* model, char** out, size_t* out_len, char** err);
}
