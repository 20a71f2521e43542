#pragma once
// MovieLens readers (GroupLens research data; get it with `mtrec data download ml-100k`).
//
//   mtrec::Dataset ds = mtrec::read_movielens_100k("data/ml-100k");   // 943 users, 1682 items
//   ds.item_text.get(ds.items.find("1"), "title");                     // "Toy Story (1995)"
//   mtrec::MovieLensFold f = mtrec::read_movielens_100k_fold("data/ml-100k", 1);   // u1.base/u1.test
//   mtrec::Interactions train = f.data.interactions.subset(f.split.train);
//   mtrec::Dataset big = mtrec::read_movielens_1m("data/ml-1m");
//
// Every interaction has behaviour "rating" and scenario "default". Item text: "title" (UTF-8;
// the files are Latin-1) and "genres" ("Action, Comedy"). User text: "profile", a sentence such
// as "24 year old male technician, zip 85711". Dense ids follow the order of first appearance
// in the ratings file; catalogue entries without ratings (some ML-1M movies) are left out.
#include <string>

#include "mtrec/data/schema.h"
#include "mtrec/data/split.h"

namespace mtrec {

/// `dir` holds u.data, u.item and u.user (u.item/u.user are optional: empty text without them).
Dataset read_movielens_100k(const std::string& dir);

struct MovieLensFold {
  Dataset data;  // base rows first, then test rows; ID maps and text as read_movielens_100k
  Split split;   // train = the base rows, test = the test rows, valid empty
};
/// The official folds: k = 1..5 (u1..u5, 80000/20000) .
MovieLensFold read_movielens_100k_fold(const std::string& dir, int k);
/// By name: "1".."5", "a" or "b" (ua/ub: 10 test ratings per user).
MovieLensFold read_movielens_100k_fold(const std::string& dir, const std::string& fold);

/// `dir` holds ratings.dat, movies.dat and users.dat ("::"-separated, Latin-1); movies.dat and
/// users.dat are optional.
Dataset read_movielens_1m(const std::string& dir);

/// "24 year old male technician, zip 85711" from the fields of u.user.
std::string movielens_100k_profile(const std::string& age, const std::string& gender, const std::string& occupation,
                                   const std::string& zip);
/// "male aged 25-34, programmer, zip 55117" from the coded fields of ML-1M users.dat.
std::string movielens_1m_profile(const std::string& gender, const std::string& age_code,
                                 const std::string& occupation_code, const std::string& zip);

}  // namespace mtrec
