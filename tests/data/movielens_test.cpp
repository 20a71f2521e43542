#include <gtest/gtest.h>

#include <algorithm>

#include "mtrec/core/check.h"
#include "mtrec/data/movielens.h"
#include "test_util.h"

namespace mtrec {
namespace {

TEST(MovieLens100K, CountsTextAndEncoding) {
  MTREC_REQUIRE_ML100K(dir);
  Dataset ds = read_movielens_100k(dir);
  EXPECT_EQ(ds.name, "ml-100k");
  EXPECT_EQ(ds.num_users(), 943);
  EXPECT_EQ(ds.num_items(), 1682);
  EXPECT_EQ(ds.interactions.size(), 100000u);
  EXPECT_TRUE(ds.interactions.has_rating);
  EXPECT_TRUE(ds.interactions.has_timestamp);
  EXPECT_EQ(ds.behaviors.raws(), (std::vector<std::string>{"rating"}));
  EXPECT_EQ(ds.scenarios.raws(), (std::vector<std::string>{"default"}));
  // First line of u.data: 196 242 3 881250949.
  EXPECT_EQ(ds.users.raw(ds.interactions.user[0]), "196");
  EXPECT_EQ(ds.items.raw(ds.interactions.item[0]), "242");
  EXPECT_FLOAT_EQ(ds.interactions.rating[0], 3.0f);
  EXPECT_EQ(ds.interactions.timestamp[0], 881250949);
  ds.validate();

  ASSERT_EQ(ds.item_text.size(), 1682);
  int32_t toy = ds.items.find("1");
  EXPECT_EQ(ds.item_text.get(toy, "title"), "Toy Story (1995)");
  EXPECT_EQ(ds.item_text.get(toy, "genres"), "Animation, Children's, Comedy");
  EXPECT_EQ(ds.item_text.text(toy), "Toy Story (1995). Animation, Children's, Comedy");
  // u.item line 543 holds "Mis\xE9rables, Les (1995)" in Latin-1.
  EXPECT_EQ(ds.item_text.get(ds.items.find("543"), "title"), "Mis\xC3\xA9rables, Les (1995)");

  ASSERT_EQ(ds.user_text.size(), 943);
  EXPECT_EQ(ds.user_text.get(ds.users.find("1"), "profile"), "24 year old male technician, zip 85711");
  EXPECT_EQ(ds.user_text.get(ds.users.find("2"), "profile"), "53 year old female with another occupation, zip 94043");
}

TEST(MovieLens100K, OfficialFoldsShareIds) {
  MTREC_REQUIRE_ML100K(dir);
  MovieLensFold f = read_movielens_100k_fold(dir, 1);
  EXPECT_EQ(f.split.train.size(), 80000u);
  EXPECT_EQ(f.split.test.size(), 20000u);
  EXPECT_TRUE(f.split.valid.empty());
  EXPECT_EQ(f.data.interactions.size(), 100000u);
  EXPECT_EQ(f.split.train.front(), 0u);
  EXPECT_EQ(f.split.test.front(), 80000u);
  EXPECT_EQ(f.split.test.back(), 99999u);
  EXPECT_EQ(f.data.num_users(), 943);
  EXPECT_EQ(f.data.num_items(), 1682);
  f.data.validate();
  // u1.test starts "1 6 5 887431973": the test rows keep the raw ids through the shared maps.
  size_t t0 = f.split.test.front();
  EXPECT_EQ(f.data.users.raw(f.data.interactions.user[t0]), "1");
  EXPECT_EQ(f.data.items.raw(f.data.interactions.item[t0]), "6");
  EXPECT_EQ(f.data.interactions.timestamp[t0], 887431973);
  EXPECT_EQ(f.data.item_text.get(f.data.items.find("1"), "title"), "Toy Story (1995)");

  MovieLensFold g = read_movielens_100k_fold(dir, "a");
  EXPECT_EQ(g.split.test.size(), 9430u);  // 10 test ratings for each of the 943 users
  EXPECT_TRUE(g.data.users == f.data.users);
  EXPECT_THROW(read_movielens_100k_fold(dir, 6), Error);
}

TEST(MovieLens1M, ReadsSyntheticFixture) {
  test::TempDir t;
  // The ML-1M format: "::"-separated, Latin-1, no header. Movie 3 has no rating.
  t.write("ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n");
  t.write("movies.dat",
          "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
          "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
          "3::Cit\xE9 des enfants perdus, La (1995)::Adventure|Sci-Fi\n");
  t.write("users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n");
  Dataset ds = read_movielens_1m(t.path());
  EXPECT_EQ(ds.name, "ml-1m");
  EXPECT_EQ(ds.num_users(), 2);
  EXPECT_EQ(ds.num_items(), 2);
  ASSERT_EQ(ds.interactions.size(), 3u);
  EXPECT_FLOAT_EQ(ds.interactions.rating[1], 3.0f);
  EXPECT_EQ(ds.interactions.timestamp[2], 978298413);
  EXPECT_EQ(ds.item_text.get(ds.items.find("661"), "genres"), "Animation, Children's, Musical");
  EXPECT_EQ(ds.item_text.get(ds.items.find("1193"), "title"), "One Flew Over the Cuckoo's Nest (1975)");
  EXPECT_EQ(ds.items.find("3"), -1);
  EXPECT_EQ(ds.user_text.get(ds.users.find("1"), "profile"), "female aged under 18, K-12 student, zip 48067");
  EXPECT_EQ(ds.user_text.get(ds.users.find("2"), "profile"), "male aged 56 or older, self-employed, zip 70072");

  // Latin-1 titles arrive as UTF-8.
  t.write("ratings.dat", "1::3::4::1\n");
  Dataset one = read_movielens_1m(t.path());
  EXPECT_EQ(one.item_text.get(0, "title"), "Cit\xC3\xA9 des enfants perdus, La (1995)");

  // Bad codes and bad rows name the file and line.
  t.write("users.dat", "1::F::1::10::48067\n2::M::57::16::70072\n");
  t.write("ratings.dat", "1::3::4::1\n2::3::5::2\n");
  try {
    read_movielens_1m(t.path());
    FAIL() << "no throw";
  } catch (const DataError& e) {
    EXPECT_EQ(e.file(), t.path("users.dat"));
    EXPECT_EQ(e.line(), 2);
    EXPECT_EQ(e.field(), "age");
  }
  t.write("ratings.dat", "1::3::4::1\n2::3::five::2\n");
  try {
    read_movielens_1m(t.path());
    FAIL() << "no throw";
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()), t.path("ratings.dat") + ":2: field 'rating': not a number: 'five'");
  }
}

TEST(MovieLens, MissingFolderIsAClearError) {
  test::TempDir t;
  try {
    read_movielens_100k(t.path());
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("u.data not found"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mtrec
