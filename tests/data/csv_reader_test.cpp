#include <gtest/gtest.h>

#include "mtrec/data/csv_reader.h"
#include "mtrec/data/download.h"
#include "test_data.h"
#include "test_util.h"

namespace mtrec {
namespace {

using test::TempDir;

using test::data_error;

TEST(CsvReader, HeaderAutoMappingReadsEveryColumn) {
  TempDir t;
  auto p = t.write("r.csv",
                   "user,item,rating,timestamp,scenario,behaviour\n"
                   "u1,i1,4.5,100,home,click\n"
                   "u2,i1,3,200,search,buy\n"
                   "u1,i2,1,300,home,click\n");
  Dataset ds = read_csv(p);
  EXPECT_EQ(ds.name, "r");
  ASSERT_EQ(ds.interactions.size(), 3u);
  EXPECT_TRUE(ds.interactions.has_rating);
  EXPECT_TRUE(ds.interactions.has_timestamp);
  EXPECT_EQ(ds.num_users(), 2);
  EXPECT_EQ(ds.num_items(), 2);
  EXPECT_EQ(ds.users.raw(ds.interactions.user[1]), "u2");
  EXPECT_EQ(ds.items.raw(ds.interactions.item[2]), "i2");
  EXPECT_FLOAT_EQ(ds.interactions.rating[0], 4.5f);
  EXPECT_EQ(ds.interactions.timestamp[2], 300);
  EXPECT_EQ(ds.scenarios.raws(), (std::vector<std::string>{"home", "search"}));
  EXPECT_EQ(ds.behaviors.raws(), (std::vector<std::string>{"click", "buy"}));
  EXPECT_EQ(ds.interactions.scenario, (std::vector<int16_t>{0, 1, 0}));
  EXPECT_EQ(ds.interactions.behavior, (std::vector<int16_t>{0, 1, 0}));
  ds.validate();
}

TEST(CsvReader, ContextColumnInternsTexts) {
  TempDir t;
  auto p = t.write("c.csv", "user,item,context\nu1,i1,  cheap flights \nu2,i1,\nu1,i2,cheap flights\nu2,i2,\"a, b\"\n");
  Dataset ds = read_csv(p);
  ASSERT_TRUE(ds.interactions.has_context);
  EXPECT_EQ(ds.interactions.context, (std::vector<int32_t>{0, -1, 0, 1}));  // trimmed; empty = none
  EXPECT_EQ(ds.context_text.size(), 2);
  EXPECT_EQ(ds.context_text.get(0, "text"), "cheap flights");
  EXPECT_EQ(ds.context_text.get(1, "text"), "a, b");
  ds.validate();
  // Explicitly absent, or a file without one: no contexts.
  EXPECT_FALSE(read_csv(p, CsvOptions().context(ColumnSpec::none())).interactions.has_context);
  EXPECT_FALSE(read_csv(t.write("n.csv", "user,item\nu1,i1\n")).interactions.has_context);
  // Read against existing ids: known texts keep theirs, new ones follow.
  auto r = t.write("e.csv", "user,item,query\nu1,i1,new text\nu2,i2,\"a, b\"\n");
  Dataset next = read_csv_with_ids(r, CsvOptions().context("query"), ds, true);
  EXPECT_EQ(next.interactions.context, (std::vector<int32_t>{2, 1}));
  EXPECT_EQ(next.context_text.get(0, "text"), "cheap flights");
  EXPECT_EQ(next.context_text.get(2, "text"), "new text");
}

TEST(CsvReader, AliasesMapMovieLensStyleHeader) {
  TempDir t;
  // Column order differs from the default, names are aliases.
  auto p = t.write("ratings.csv", "movieId,userId,rating,timestamp\n10,1,4.0,964982703\n20,1,5.0,964981247\n");
  Dataset ds = read_csv(p);
  ASSERT_EQ(ds.interactions.size(), 2u);
  EXPECT_EQ(ds.users.raw(ds.interactions.user[0]), "1");
  EXPECT_EQ(ds.items.raw(ds.interactions.item[1]), "20");
  EXPECT_EQ(ds.interactions.timestamp[0], 964982703);
  EXPECT_EQ(ds.scenarios.raws(), (std::vector<std::string>{"default"}));
  EXPECT_EQ(ds.behaviors.raws(), (std::vector<std::string>{"rating"}));

  auto q = t.write("recbole.inter", "user_id:token\titem_id:token\tts:float\nA\tB\t5\n");
  Dataset r = read_csv(q, CsvOptions().delimiter("\t"));
  EXPECT_FALSE(r.interactions.has_rating);
  ASSERT_TRUE(r.interactions.has_timestamp);
  EXPECT_EQ(r.interactions.timestamp[0], 5);
}

TEST(CsvReader, QuotedFieldsWithDelimiterNewlineAndDoubledQuotes) {
  TempDir t;
  auto p = t.write("q.csv",
                   "user,item,rating\n"
                   "\"a,b\",\"say \"\"hi\"\"\",1\n"  // line 2
                   "\"multi\nline\nuser\",i2,2\n"    // lines 3-5
                   "u3,i3,x\n");                     // line 6: bad rating
  std::string msg = data_error([&] { read_csv(p); });
  EXPECT_EQ(msg, p + ":6: field 'rating': not a number: 'x'");

  auto ok = t.write("q2.csv", "user,item,rating\r\n\"a,b\",\"say \"\"hi\"\"\",1\r\n\"multi\nline\",i2,2\r\n");
  Dataset ds = read_csv(ok);
  ASSERT_EQ(ds.interactions.size(), 2u);
  EXPECT_EQ(ds.users.raw(0), "a,b");
  EXPECT_EQ(ds.items.raw(0), "say \"hi\"");
  EXPECT_EQ(ds.users.raw(1), "multi\nline");
  EXPECT_FLOAT_EQ(ds.interactions.rating[1], 2.0f);
}

TEST(CsvReader, ByteOrderMarkCrlfAndSpacesAreTolerated) {
  TempDir t;
  auto p = t.write("bom.csv", "\xEF\xBB\xBFUser ID , Item_ID,Rating\r\n u1 , i1 , 4 \r\n\r\nu2,i1,2\r\n");
  Dataset ds = read_csv(p);
  ASSERT_EQ(ds.interactions.size(), 2u);
  EXPECT_EQ(ds.users.raw(0), "u1");
  EXPECT_EQ(ds.items.raw(0), "i1");
  EXPECT_EQ(ds.num_items(), 1);
  EXPECT_FLOAT_EQ(ds.interactions.rating[0], 4.0f);
}

TEST(CsvReader, QuotingErrorsNameTheLine) {
  TempDir t;
  auto p = t.write("q.csv", "user,item\nu1,i1\n\"u2\"x,i2\n");
  EXPECT_EQ(data_error([&] { read_csv(p); }), p + ":3: field 'user': unexpected character 'x' after a closing quote");
  auto u = t.write("u.csv", "user,item\nu1,i1\nu2,\"open\nstill open\n");
  EXPECT_EQ(data_error([&] { read_csv(u); }),
            u + ":3: field 'item': unterminated quoted field (the opening quote is on line 3)");
}

TEST(CsvReader, ImplicitFeedbackWithoutRatingOrTimestamp) {
  TempDir t;
  auto p = t.write("clicks.csv", "user,item\nu1,i1\nu1,i2\n\nu2,i2\n");
  Dataset ds = read_csv(p);
  EXPECT_EQ(ds.interactions.size(), 3u);
  EXPECT_FALSE(ds.interactions.has_rating);
  EXPECT_FALSE(ds.interactions.has_timestamp);
  EXPECT_TRUE(ds.interactions.rating.empty());
  EXPECT_EQ(ds.behaviors.raws(), (std::vector<std::string>{"interaction"}));

  // A rating column present in the file is ignored when mapped to none.
  auto q = t.write("r.csv", "user,item,rating\nu1,i1,5\n");
  Dataset r = read_csv(q, CsvOptions().no_rating().default_behavior("view"));
  EXPECT_FALSE(r.interactions.has_rating);
  EXPECT_EQ(r.behaviors.raw(0), "view");
}

TEST(CsvReader, DoubleColonDelimiterWithoutHeaderUsesPositions) {
  TempDir t;
  auto p = t.write("ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n");
  Dataset ds = read_csv(p, CsvOptions().delimiter("::").has_header(false));
  ASSERT_EQ(ds.interactions.size(), 3u);
  EXPECT_EQ(ds.num_users(), 2);
  EXPECT_EQ(ds.num_items(), 2);
  EXPECT_FLOAT_EQ(ds.interactions.rating[1], 3.0f);
  EXPECT_EQ(ds.interactions.timestamp[2], 978298413);

  // Explicit indices: timestamp in column 2, no rating.
  auto q = t.write("x.dat", "a::b::7\n");
  Dataset x = read_csv(q, CsvOptions().delimiter("::").has_header(false).user(0).item(1).no_rating().timestamp(2));
  EXPECT_FALSE(x.interactions.has_rating);
  EXPECT_EQ(x.interactions.timestamp[0], 7);
}

TEST(CsvReader, Latin1IsConvertedToUtf8) {
  TempDir t;
  auto p = t.write("l.csv", "user|item\nu1|Caf\xE9\n");
  Dataset ds = read_csv(p, CsvOptions().delimiter("|").encoding(Encoding::Latin1));
  EXPECT_EQ(ds.items.raw(0), "Caf\xC3\xA9");  // U+00E9 in UTF-8
  EXPECT_EQ(latin1_to_utf8("\xFF"), "\xC3\xBF");
}

TEST(CsvReader, InvalidUtf8IsRejectedWithLineAndField) {
  TempDir t;
  auto p = t.write("l.csv", "user|item\nu1|ok\nu2|Caf\xE9\n");
  EXPECT_EQ(data_error([&] { read_csv(p, CsvOptions().delimiter("|")); }),
            p + ":3: field 'item': invalid UTF-8 (byte 0xE9 at offset 3); pass encoding=latin1 if the file is Latin-1");
  EXPECT_EQ(find_invalid_utf8("abc\xC3\xA9"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("abcdefgh\xC0\xAF"), 8u);                      // overlong '/'
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), 0u);                          // surrogate
  EXPECT_EQ(find_invalid_utf8("ab\xF0\x9F\x98"), 2u);                        // truncated
  EXPECT_EQ(find_invalid_utf8("\xF0\x9F\x98\x80"), std::string_view::npos);  // U+1F600
}

TEST(CsvReader, MalformedInputNamesFileLineAndField) {
  TempDir t;
  struct Case {
    std::string content, expected_suffix;
  };
  const std::vector<Case> cases = {
      {"user,item,rating\nu1,i1,5\nu2,i2\n", ":3: field 'rating': expected 3 fields, found 2 (this field is missing)"},
      {"user,item,rating\nu1,i1,5,9\n", ":2: field 'column 4': expected 3 fields, found 4 (this one is extra)"},
      {"user,item,rating\nu1,i1,five\n", ":2: field 'rating': not a number: 'five'"},
      {"user,item,rating\nu1,i1,nan\n", ":2: field 'rating': not a number: 'nan'"},
      {"user,item,timestamp\nu1,i1,12:30\n", ":2: field 'timestamp': not an integer timestamp: '12:30'"},
      {"user,item\n,i1\n", ":2: field 'user': empty user id"},
      {"", ":1: the file is empty"},
      {"user,item\n", ":1: no data rows after the header"},
      {"who,what\na,b\n",
       ":1: field 'user': no user column found in the header (columns: who, what); name it 'user' or "
       "map it explicitly"},
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    auto p = t.write("m" + std::to_string(c) + ".csv", cases[c].content);
    EXPECT_EQ(data_error([&] { read_csv(p); }), p + cases[c].expected_suffix) << "case " << c;
  }
  auto p = t.write("n.csv", "user,item,rating\nu1,i1,5\n");
  EXPECT_EQ(data_error([&] { read_csv(p, CsvOptions().rating("score")); }),
            p + ":1: field 'rating': no column named 'score' in the header (columns: user, item, rating)");
  EXPECT_EQ(data_error([&] { read_csv(p, CsvOptions().item(7)); }),
            p + ":1: field 'item': column index 7 is outside the 3 columns of the file (indices are 0-based)");
}

TEST(CsvReader, ValidateCollectsEveryProblemAndCountsGoodRows) {
  TempDir t;
  auto p = t.write("v.csv", "user,item,rating\nu1,i1,5\nu2,i2,bad\nu3,i3\nu4,i4,4\n\"u5\"!,i5,1\nu6,\xFF,2\n");
  CsvValidation v = validate_csv(p);
  EXPECT_EQ(v.rows, 2);
  ASSERT_EQ(v.problems.size(), 4u);
  EXPECT_EQ(v.problems[0].line(), 3);
  EXPECT_EQ(v.problems[0].field(), "rating");
  EXPECT_EQ(v.problems[1].line(), 4);
  EXPECT_EQ(v.problems[2].line(), 6);
  EXPECT_EQ(v.problems[2].field(), "user");
  EXPECT_EQ(v.problems[3].line(), 7);
  EXPECT_EQ(v.problems[3].field(), "item");
  EXPECT_FALSE(v.ok());

  auto good = t.write("g.csv", "user,item\na,b\n");
  CsvValidation g = validate_csv(good);
  EXPECT_TRUE(g.ok());
  EXPECT_EQ(g.rows, 1);
}

TEST(CsvReader, NothingPartialIsReturnedAfterAnError) {
  TempDir t;
  // 1000 good rows, then a bad one: the call throws instead of returning the 1000.
  std::string content = "user,item,rating\n";
  for (int r = 0; r < 1000; ++r) content += "u" + std::to_string(r) + ",i" + std::to_string(r % 7) + ",3\n";
  content += "u,i,oops\n";
  auto p = t.write("big.csv", content);
  Dataset ds;
  ds.name = "untouched";
  EXPECT_THROW(ds = read_csv(p), DataError);
  EXPECT_EQ(ds.name, "untouched");
  EXPECT_TRUE(ds.interactions.empty());
}

TEST(CsvReader, ReadWithExistingIdsKeepsDenseIds) {
  TempDir t;
  Dataset full = read_csv(t.write("full.csv", "user,item\na,x\nb,y\nc,z\n"));
  Dataset part = read_csv_with_ids(t.write("part.csv", "user,item\nc,y\n"), CsvOptions(), full, false);
  EXPECT_EQ(part.interactions.user[0], 2);
  EXPECT_EQ(part.interactions.item[0], 1);
  EXPECT_EQ(part.num_users(), 3);
  auto bad = t.write("bad.csv", "user,item\nc,y\nd,x\n");
  EXPECT_EQ(data_error([&] { read_csv_with_ids(bad, CsvOptions(), full, false); }),
            bad + ":3: field 'user': user 'd' is not in full");
  EXPECT_EQ(read_csv_with_ids(bad, CsvOptions(), full, true).num_users(), 4);
}

TEST(CsvOptions, ConfigFileSetsEveryKeyAndReportsBadLines) {
  TempDir t;
  auto cfg = t.write("cols.conf",
                     "# MovieLens 1M ratings\n"
                     "delimiter = ::\n"
                     "header = false\n"
                     "encoding = latin1\n"
                     "user = 0\n"
                     "item = 1\n"
                     "rating = none   # implicit\n"
                     "timestamp = 3\n");
  CsvOptions o = CsvOptions::from_config(cfg);
  EXPECT_EQ(o.delimiter(), "::");
  EXPECT_FALSE(o.has_header());
  EXPECT_EQ(o.encoding(), Encoding::Latin1);
  EXPECT_EQ(o.user().kind, ColumnSpec::Kind::Index);
  EXPECT_EQ(o.rating().kind, ColumnSpec::Kind::None);
  EXPECT_EQ(o.timestamp().index, 3);
  Dataset ds = read_csv(t.write("r.dat", "1::2::5::99\n"), o);
  EXPECT_FALSE(ds.interactions.has_rating);
  EXPECT_EQ(ds.interactions.timestamp[0], 99);

  EXPECT_EQ(CsvOptions().set("delimiter", "\\t").delimiter(), "\t");
  EXPECT_EQ(CsvOptions().set("item", "movieId").item().name, "movieId");
  EXPECT_EQ(CsvOptions().set("context", "query").context().name, "query");

  auto bad = t.write("bad.conf", "delimiter = ,\n\nheader = maybe\n");
  EXPECT_EQ(data_error([&] { CsvOptions::from_config(bad); }),
            bad + ":3: field 'header': 'maybe' is not a boolean for header (true|false)");
  auto unknown = t.write("unknown.conf", "colour = red\n");
  EXPECT_NE(data_error([&] { CsvOptions::from_config(unknown); }).find(unknown + ":1: field 'colour': unknown key"),
            std::string::npos);
  auto noeq = t.write("noeq.conf", "user 0\n");
  EXPECT_EQ(data_error([&] { CsvOptions::from_config(noeq); }), noeq + ":1: expected 'key = value', got 'user 0'");
}

TEST(CsvReader, ForEachRecordGivesRawFieldsAndLines) {
  TempDir t;
  auto p = t.write("r.txt", "a|b\n\n\"c\nd\"|e\nf|g\n");
  std::vector<int64_t> lines;
  std::vector<std::string> firsts;
  for_each_record(p, CsvOptions().delimiter("|"), [&](int64_t line, const std::vector<std::string_view>& f) {
    lines.push_back(line);
    firsts.emplace_back(f[0]);
  });
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(firsts, (std::vector<std::string>{"a", "c\nd", "f"}));
}

TEST(Download, Sha256OfKnownStrings) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  TempDir t;
  // Larger than the 64 KiB read buffer, so the streaming path is exercised.
  std::string big(200000, 'a');
  EXPECT_EQ(sha256_file(t.write("big", big)), sha256_hex(big));
  EXPECT_THROW(sha256_file(t.path("missing")), Error);
  const DatasetArchive* a = find_archive("ml-100k");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->url(), "https://files.grouplens.org/datasets/movielens/ml-100k.zip");
  EXPECT_EQ(a->file_name(), "ml-100k.zip");
  EXPECT_EQ(a->sha256.size(), 64u);
  EXPECT_EQ(find_archive("ml-20m"), nullptr);
}

}  // namespace
}  // namespace mtrec
