#pragma once
// Writes a Dataset in the generic CSV format that read_dataset_dir (csv_reader.h) reads back.
//
//   mtrec::write_dataset_csv(ds, "out/world");          // out/world/interactions.csv, items.csv, ...
//   mtrec::Dataset back = mtrec::read_dataset_dir("out/world");   // the same ids, rows and text
//
// Files, each written atomically (a reader never sees half a file):
//   interactions.csv  user,item[,rating][,timestamp],scenario,behaviour[,context]   (rating,
//                     timestamp and context only when the Dataset has them; ratings in shortest
//                     round-trip form; the context as its text, empty for none)
//   items.csv         item,<every item text field>    one row per item, in dense-id order
//   users.csv         user,<every user text field>    one row per user, in dense-id order
//   scenarios.csv     scenario                          the scenario ids, in dense-id order
//   behaviours.csv    behaviour                         the behaviour ids, in dense-id order
//   contexts.csv      context                           the context texts, in dense-id order
//                                                       (only when the interactions have contexts)
// The last five fix the dense ids on reading (entities without interactions included).
// Fields follow RFC 4180: a field holding a comma, a double quote or a line break is quoted and
// its quotes doubled. Text is written as is (UTF-8 in, UTF-8 out).
#include <string>
#include <string_view>

#include "mtrec/data/schema.h"

namespace mtrec {

/// Creates `dir` when needed and writes the files above. Throws mtrec::Error when a file
/// cannot be written, or when an id would not read back (empty, or with leading/trailing
/// spaces, which the reader trims; a context text repeated in context_text).
void write_dataset_csv(const Dataset& ds, const std::string& dir);

/// Appends `field` to `out`, quoted per RFC 4180 when it holds ',', '"', '\r' or '\n'.
void append_csv_field(std::string& out, std::string_view field);

}  // namespace mtrec
