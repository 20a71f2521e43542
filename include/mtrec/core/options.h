#pragma once
// Options structs list each field once. The list is an X-macro of (type, name, default); from
// it MTREC_OPTIONS declares every field with TORCH_ARG (chaining setter `name(v)`, getter
// `name()`, storage `name_`) and a visitor over (key, field) pairs that the JSON forms (and any
// other serialisation) are written from, so a new field is one line.
//
//   #define MY_OPTIONS(X) X(int64_t, dim, 64) X(double, dropout, 0.1)
//   struct MyOptions { MTREC_OPTIONS(MY_OPTIONS) };
//   MyOptions().dim(32).dropout(0);
//   MyOptions::visit_fields(o, [](const char* key, const auto& value) { ... });  // "dim", "dropout"
//
// The including file provides TORCH_ARG (<torch/arg.h>); this header includes no LibTorch.

#define MTREC_OPTION_DECLARE_(T, name, default_value) TORCH_ARG(T, name) = default_value;
#define MTREC_OPTION_VISIT_(T, name, default_value) v(#name, self.name##_);

#define MTREC_OPTIONS(LIST)                                  \
  LIST(MTREC_OPTION_DECLARE_)                                \
                                                             \
 public:                                                     \
  /** Calls v(key, field) for every field, in list order. */ \
  template <class Self, class V>                             \
  static void visit_fields(Self& self, V&& v) {              \
    LIST(MTREC_OPTION_VISIT_)                                \
  }
