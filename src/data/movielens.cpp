#include "mtrec/data/movielens.h"

#include <filesystem>

#include "mtrec/core/check.h"
#include "mtrec/data/csv_reader.h"

namespace mtrec {

namespace {

namespace fs = std::filesystem;

const char* const kGenres100k[19] = {"unknown",   "Action",   "Adventure",   "Animation", "Children's",
                                     "Comedy",    "Crime",    "Documentary", "Drama",     "Fantasy",
                                     "Film-Noir", "Horror",   "Musical",     "Mystery",   "Romance",
                                     "Sci-Fi",    "Thriller", "War",         "Western"};

std::string require_file(const std::string& dir, const std::string& name) {
  std::string path = (fs::path(dir) / name).string();
  if (!fs::exists(path))
    throw Error("MovieLens file " + path +
                " not found (get the data with `mtrec data download`, or point --data-dir at "
                "the folder that holds " +
                name + ")");
  return path;
}

CsvOptions ratings_options(const std::string& delimiter, const std::string& name) {
  return CsvOptions()
      .delimiter(delimiter)
      .has_header(false)
      .quoting(false)
      .encoding(Encoding::Latin1)
      .user(0)
      .item(1)
      .rating(2)
      .timestamp(3)
      .default_behavior("rating")
      .default_scenario("default")
      .name(name);
}

CsvOptions text_options(const std::string& delimiter) {
  return CsvOptions().delimiter(delimiter).has_header(false).quoting(false).encoding(Encoding::Latin1);
}

void check_fields(const std::string& path, int64_t line, const std::vector<std::string_view>& f, size_t n) {
  if (f.size() != n)
    throw DataError(path, line,
                    f.size() < n ? "column " + std::to_string(f.size() + 1) : "column " + std::to_string(n + 1),
                    "expected " + std::to_string(n) + " fields, found " + std::to_string(f.size()));
}

std::string join_genres(const std::vector<std::string>& g) {
  std::string out;
  for (const auto& s : g) out += (out.empty() ? "" : ", ") + s;
  return out;
}

/// Calls fn(path, line, dense id, fields) for every row of a '|' or '::' catalogue file whose
/// first field is an id in `ids`; rows of unknown ids (never rated) are skipped. No-op when the
/// file does not exist (the text is optional).
template <typename Fn>
void read_catalogue(const std::string& dir, const std::string& name, const std::string& delimiter, size_t fields,
                    const IdMap& ids, Fn&& fn) {
  std::string path = (fs::path(dir) / name).string();
  if (!fs::exists(path)) return;
  for_each_record(path, text_options(delimiter), [&](int64_t line, const std::vector<std::string_view>& f) {
    check_fields(path, line, f, fields);
    int32_t id = ids.find(f[0]);
    if (id >= 0) fn(path, line, id, f);
  });
}

/// Sizes the catalogues to the ID maps so that every dense id has a row.
void finish_catalogues(Dataset& ds) {
  ds.item_text.resize(ds.num_items());
  ds.user_text.resize(ds.num_users());
}

}  // namespace

std::string movielens_100k_profile(const std::string& age, const std::string& gender, const std::string& occupation,
                                   const std::string& zip) {
  std::string g = gender == "M" ? "male" : gender == "F" ? "female" : gender;
  std::string who;
  if (occupation == "none") {
    who = g + " with no occupation";
  } else if (occupation == "other") {
    who = g + " with another occupation";
  } else {
    who = g + " " + occupation;
  }
  return age + " year old " + who + ", zip " + zip;
}

std::string movielens_1m_profile(const std::string& gender, const std::string& age_code,
                                 const std::string& occupation_code, const std::string& zip) {
  static const std::pair<const char*, const char*> ages[] = {{"1", "under 18"},    {"18", "18-24"}, {"25", "25-34"},
                                                             {"35", "35-44"},      {"45", "45-49"}, {"50", "50-55"},
                                                             {"56", "56 or older"}};
  static const char* const occupations[21] = {"other or unspecified occupation",
                                              "academic/educator",
                                              "artist",
                                              "clerical/admin",
                                              "college/grad student",
                                              "customer service",
                                              "doctor/health care",
                                              "executive/managerial",
                                              "farmer",
                                              "homemaker",
                                              "K-12 student",
                                              "lawyer",
                                              "programmer",
                                              "retired",
                                              "sales/marketing",
                                              "scientist",
                                              "self-employed",
                                              "technician/engineer",
                                              "tradesman/craftsman",
                                              "unemployed",
                                              "writer"};
  std::string age;
  for (const auto& [code, text] : ages)
    if (age_code == code) age = text;
  MTREC_CHECK(!age.empty(), "unknown ML-1M age code '", age_code, "' (expected 1, 18, 25, 35, 45, 50 or 56)");
  int occ = -1;
  if (!occupation_code.empty() && occupation_code.size() <= 2 &&
      occupation_code.find_first_not_of("0123456789") == std::string::npos)
    occ = std::stoi(occupation_code);
  MTREC_CHECK(occ >= 0 && occ <= 20, "unknown ML-1M occupation code '", occupation_code, "' (expected 0..20)");
  std::string g = gender == "M" ? "male" : gender == "F" ? "female" : gender;
  return g + " aged " + age + ", " + occupations[occ] + ", zip " + zip;
}

Dataset read_movielens_100k(const std::string& dir) {
  Dataset ds = read_csv(require_file(dir, "u.data"), ratings_options("\t", "ml-100k"));

  ds.item_text = TextCatalog({"title", "genres"});
  read_catalogue(dir, "u.item", "|", 5 + 19, ds.items,
                 [&](const std::string& path, int64_t line, int32_t id, const std::vector<std::string_view>& f) {
                   std::vector<std::string> genres;
                   for (size_t g = 0; g < 19; ++g) {
                     std::string_view flag = f[5 + g];
                     if (flag == "1") {
                       genres.emplace_back(kGenres100k[g]);
                     } else if (flag != "0") {
                       throw DataError(path, line, kGenres100k[g],
                                       "genre flag must be 0 or 1, got '" + std::string(flag) + "'");
                     }
                   }
                   ds.item_text.set(id, "title", std::string(f[1]));
                   ds.item_text.set(id, "genres", join_genres(genres));
                 });
  ds.user_text = TextCatalog({"profile"});
  read_catalogue(dir, "u.user", "|", 5, ds.users,
                 [&](const std::string&, int64_t, int32_t id, const std::vector<std::string_view>& f) {
                   ds.user_text.set(id, "profile",
                                    movielens_100k_profile(std::string(f[1]), std::string(f[2]), std::string(f[3]),
                                                           std::string(f[4])));
                 });
  finish_catalogues(ds);
  return ds;
}

MovieLensFold read_movielens_100k_fold(const std::string& dir, int k) {
  MTREC_CHECK(k >= 1 && k <= 5, "MovieLens 100K folds are 1..5 (or \"a\"/\"b\"), got ", k);
  return read_movielens_100k_fold(dir, std::to_string(k));
}

MovieLensFold read_movielens_100k_fold(const std::string& dir, const std::string& fold) {
  MTREC_CHECK(fold == "1" || fold == "2" || fold == "3" || fold == "4" || fold == "5" || fold == "a" || fold == "b",
              "MovieLens 100K folds are 1..5, a and b; got '", fold, "'");
  // The full data fixes the ID maps and text, so every fold shares the same dense ids.
  Dataset full = read_movielens_100k(dir);
  std::string base_path = require_file(dir, "u" + fold + ".base");
  std::string test_path = require_file(dir, "u" + fold + ".test");
  auto opts = ratings_options("\t", "ml-100k");
  Dataset base = read_csv_with_ids(base_path, opts, full, /*allow_new_ids=*/false);
  Dataset test = read_csv_with_ids(test_path, opts, full, /*allow_new_ids=*/false);

  MovieLensFold out;
  out.data = std::move(base);
  out.data.name = "ml-100k-u" + fold;
  Interactions& x = out.data.interactions;
  const Interactions& t = test.interactions;
  const size_t nb = x.size();
  x.user.insert(x.user.end(), t.user.begin(), t.user.end());
  x.item.insert(x.item.end(), t.item.begin(), t.item.end());
  x.rating.insert(x.rating.end(), t.rating.begin(), t.rating.end());
  x.timestamp.insert(x.timestamp.end(), t.timestamp.begin(), t.timestamp.end());
  x.scenario.insert(x.scenario.end(), t.scenario.begin(), t.scenario.end());
  x.behavior.insert(x.behavior.end(), t.behavior.begin(), t.behavior.end());
  x.check_consistent();
  out.split.train.resize(nb);
  for (size_t r = 0; r < nb; ++r) out.split.train[r] = r;
  out.split.test.resize(t.size());
  for (size_t r = 0; r < t.size(); ++r) out.split.test[r] = nb + r;
  return out;
}

Dataset read_movielens_1m(const std::string& dir) {
  Dataset ds = read_csv(require_file(dir, "ratings.dat"), ratings_options("::", "ml-1m"));

  ds.item_text = TextCatalog({"title", "genres"});
  read_catalogue(dir, "movies.dat", "::", 3, ds.items,  // 177 ML-1M movies have no rating: skipped
                 [&](const std::string&, int64_t, int32_t id, const std::vector<std::string_view>& f) {
                   std::vector<std::string> genres;
                   std::string_view g = f[2];
                   while (!g.empty()) {
                     size_t bar = g.find('|');
                     genres.emplace_back(g.substr(0, bar));
                     if (bar == std::string_view::npos) break;
                     g.remove_prefix(bar + 1);
                   }
                   ds.item_text.set(id, "title", std::string(f[1]));
                   ds.item_text.set(id, "genres", join_genres(genres));
                 });
  ds.user_text = TextCatalog({"profile"});
  read_catalogue(dir, "users.dat", "::", 5, ds.users,
                 [&](const std::string& path, int64_t line, int32_t id, const std::vector<std::string_view>& f) {
                   try {
                     ds.user_text.set(id, "profile",
                                      movielens_1m_profile(std::string(f[1]), std::string(f[2]), std::string(f[3]),
                                                           std::string(f[4])));
                   } catch (const DataError&) {
                     throw;
                   } catch (const Error& e) {
                     std::string what = e.what();
                     throw DataError(path, line, what.find("occupation") != std::string::npos ? "occupation" : "age",
                                     what.substr(0, what.find(" [check")));
                   }
                 });
  finish_catalogues(ds);
  return ds;
}

}  // namespace mtrec
