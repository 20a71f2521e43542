#pragma once
// The heads, what a model predicts, each with one name: the name in options, checkpoints,
// metrics ("next_item/NDCG@10"), task maps, engine task names and on the command line.
//
//   for (mtrec::Head h : mtrec::all_heads()) if (options.has_task(h)) ...
//   mtrec::parse_head("next-item") == mtrec::Head::NextItem;   // the CLI's hyphen is accepted
//   mtrec::head_name(mtrec::Head::NextItem) == std::string("next_item")
#include <string>
#include <vector>

namespace mtrec {

enum class Head { Rating, Ctr, NextItem, Match, Scenario, Mlm };

/// Every head, in the order the unified model lists its tasks (rating and CTR first: the
/// experts' task outputs are in this order).
const std::vector<Head>& all_heads();
const char* head_name(Head head);
/// The head called `name`; "next-item" is read as next_item (a hyphen, as command lines and
/// checkpoints before one spelling wrote it). Throws mtrec::Error naming the choices otherwise.
Head parse_head(const std::string& name);
/// `name` with the one spelling: "next-item" -> "next_item"; any other name unchanged. Model
/// kinds (the task of a checkpoint) go through it, so both spellings name the same kind.
std::string canonical_task_name(const std::string& name);

// JSON (nlohmann, found by argument-dependent lookup) writes a head by its name, never as the
// enum's number. Templates, so that this header needs no JSON header.
template <class Json>
void to_json(Json& j, Head head) {
  j = head_name(head);
}
template <class Json>
void from_json(const Json& j, Head& head) {
  head = parse_head(j.template get<std::string>());
}

}  // namespace mtrec
