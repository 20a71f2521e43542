#include "mtrec/data/synthetic.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "mtrec/core/check.h"
#include "mtrec/core/random.h"

namespace mtrec {
namespace {

constexpr int64_t kT0 = 1'700'000'000;    // 2023-11-14, seconds
constexpr int64_t kSpan = 365LL * 86400;  // one year of activity
constexpr int kBlockUsers = 256;          // unit of parallel work; fixed so output ignores threads
constexpr int16_t kClick = 0, kRating = 1, kWishlist = 2, kImpression = 3;

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

double unit(Rng& rng) { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }

/// Index drawn from cumulative weights cum[0..k).
size_t draw_cum(const double* cum, size_t k, Rng& rng) {
  const double t = unit(rng) * cum[k - 1];
  auto i = static_cast<size_t>(std::upper_bound(cum, cum + k, t) - cum);
  return std::min(i, k - 1);
}

/// Pseudo-words: syllables of onset + vowel (+ coda), pronounceable and deterministic.
std::string make_word(Rng& rng, int syllables) {
  static const char* onsets[] = {"b", "d", "f", "g",  "k",  "l",  "m",  "n",  "p",  "r",  "s",
                                 "t", "v", "z", "br", "tr", "st", "kl", "sh", "ch", "gr", "pl"};
  static const char* vowels[] = {"a", "e", "i", "o", "u", "ai", "ou", "ea"};
  static const char* codas[] = {"n", "r", "l", "s", "m", "x", "nd"};
  std::string w;
  for (int s = 0; s < syllables; ++s) {
    w += onsets[rng() % std::size(onsets)];
    w += vowels[rng() % std::size(vowels)];
    if (rng() % 3 == 0) w += codas[rng() % std::size(codas)];
  }
  return w;
}

std::vector<float> dirichlet(Rng& rng, int k, double alpha) {
  std::gamma_distribution<double> gamma(alpha, 1.0);
  std::vector<float> v(static_cast<size_t>(k));
  double sum = 0;
  for (auto& x : v) {
    x = static_cast<float>(gamma(rng));
    sum += x;
  }
  for (auto& x : v) x = sum > 0 ? static_cast<float>(x / sum) : 1.0f / static_cast<float>(k);
  return v;
}

/// Items that can be shown, ordered by release: those available at time t are a prefix, so
/// one binary search finds it and a second draws by popularity within it.
struct Pool {
  std::vector<int32_t> items;
  std::vector<int64_t> release;
  std::vector<double> cum;
  void build(std::vector<int32_t> ids, const std::vector<int64_t>& rel, const std::vector<double>& weight) {
    std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
      return rel[static_cast<size_t>(a)] != rel[static_cast<size_t>(b)]
                 ? rel[static_cast<size_t>(a)] < rel[static_cast<size_t>(b)]
                 : a < b;
    });
    items = std::move(ids);
    double acc = 0;
    for (int32_t i : items) {
      release.push_back(rel[static_cast<size_t>(i)]);
      acc += weight[static_cast<size_t>(i)];
      cum.push_back(acc);
    }
  }
  /// An item released by time t, by popularity; -1 when none is.
  int32_t draw(int64_t t, Rng& rng) const {
    const auto k = static_cast<size_t>(std::upper_bound(release.begin(), release.end(), t) - release.begin());
    return k == 0 ? -1 : items[draw_cum(cum.data(), k, rng)];
  }
};

/// Output rows of one block of users (either a window of the final arrays or a local buffer).
struct Rows {
  int32_t* user;
  int32_t* item;
  float* rating;
  int64_t* ts;
  int16_t* scen;
  int16_t* beh;
  uint64_t* ctx;  // context codes (ContextWords), resolved to context ids after the workers
  size_t n = 0;
};

/// The words of request contexts as one table, so that a context is a compact code of up to
/// three token indices (21 bits each, +1 so that 0 is an empty slot) while the workers run;
/// codes become deduplicated texts once, in row order, afterwards.
struct ContextWords {
  static constexpr int kSlotBits = 21;
  std::vector<std::string> tokens;  // [topic words T*24 | common words | phrases | scenario names]
  int32_t common = 0, n_common = 0;
  int32_t home_pages = 0, n_home_pages = 0, home_suffixes = 0, n_home_suffixes = 0;
  int32_t ads_pages = 0, n_ads_pages = 0, ads_suffixes = 0, n_ads_suffixes = 0;
  int32_t more_like = 0;
  int32_t scenario_names = 0;  // 3 per scenario >= 3
  int32_t words_per_topic = 0;

  void build(const SyntheticTruth& truth, int32_t scenarios, uint64_t seed) {
    words_per_topic = static_cast<int32_t>(truth.topic_words.front().size());
    for (const auto& v : truth.topic_words) tokens.insert(tokens.end(), v.begin(), v.end());
    auto add = [&](std::initializer_list<const char*> list, int32_t& first, int32_t& n) {
      first = static_cast<int32_t>(tokens.size());
      for (const char* t : list) tokens.emplace_back(t);
      n = static_cast<int32_t>(list.size());
    };
    common = static_cast<int32_t>(tokens.size());
    tokens.insert(tokens.end(), truth.common_words.begin(), truth.common_words.end());
    n_common = static_cast<int32_t>(truth.common_words.size());
    // "for you", "picks" and "this week" occur on both home-feed and ads surfaces.
    add({"home feed for you", "trending now", "continue watching", "new releases", "top picks", "recommended for you",
         "popular this week", "because you watched"},
        home_pages, n_home_pages);
    add({"today", "tonight", "page 2", "page 3", "near you"}, home_suffixes, n_home_suffixes);
    add({"sponsored", "promoted picks", "featured partner", "sponsored for you", "partner offers", "deals this week"},
        ads_pages, n_ads_pages);
    add({"slot 1", "slot 2", "slot 3", "banner", "sidebar"}, ads_suffixes, n_ads_suffixes);
    int32_t one = 0;
    add({"more like"}, more_like, one);
    scenario_names = static_cast<int32_t>(tokens.size());
    Rng rng(derive_seed(seed, "synthetic-context-names"));
    for (int32_t sc = 3; sc < scenarios; ++sc) {
      const std::string w = make_word(rng, 2);
      for (const char* kind : {" hub", " picks", " corner"}) tokens.push_back(w + kind);
    }
    MTREC_CHECK(tokens.size() < (size_t{1} << kSlotBits) - 1, "too many context words: ", tokens.size());
  }

  static uint64_t code(std::initializer_list<int32_t> t) {
    uint64_t c = 0;
    int k = 0;
    for (int32_t v : t) c |= static_cast<uint64_t>(v + 1) << (kSlotBits * k++);
    return c;
  }
  std::string text(uint64_t c) const {
    std::string out;
    for (; c; c >>= kSlotBits) {
      const uint64_t v = c & ((uint64_t{1} << kSlotBits) - 1);
      if (!out.empty()) out += ' ';
      out += tokens[static_cast<size_t>(v - 1)];
    }
    return out;
  }

  int32_t topic_word(int32_t topic, Rng& rng) const {
    return topic * words_per_topic + static_cast<int32_t>(rng() % static_cast<uint64_t>(words_per_topic));
  }
  /// n <= 3 distinct words of the topic (vocabularies hold 24).
  void topic_words(int32_t topic, int n, int32_t* out, Rng& rng) const {
    for (int k = 0; k < n;) {
      out[k] = topic_word(topic, rng);
      if (std::find(out, out + k, out[k]) == out + k || words_per_topic < n) ++k;
    }
  }
  int32_t of(int32_t first, int32_t n, Rng& rng) const {
    return first + static_cast<int32_t>(rng() % static_cast<uint64_t>(n));
  }
  /// A page name of `first`/`n`, a seeded suffix on 40% of them.
  uint64_t page(int32_t first, int32_t n, int32_t suffixes, int32_t n_suffixes, Rng& rng) const {
    const int32_t p = of(first, n, rng);
    return unit(rng) < 0.4 ? code({p, of(suffixes, n_suffixes, rng)}) : code({p});
  }
  /// "more like w [w]": browsing by topic, in the vocabulary queries use.
  uint64_t browse(int32_t topic, Rng& rng) const {
    int32_t w[2];
    if (unit(rng) < 0.4) {
      topic_words(topic, 2, w, rng);
      return code({more_like, w[0], w[1]});
    }
    return code({more_like, topic_word(topic, rng)});
  }
  /// The request text of one exposure in `scenario` whose session is about `topic`.
  uint64_t draw(int32_t scenario, int32_t topic, Rng& rng) const {
    const double r = unit(rng);
    switch (scenario) {
      case 0:
        return r < 0.25 ? browse(topic, rng) : page(home_pages, n_home_pages, home_suffixes, n_home_suffixes, rng);
      case 1: {
        if (r < 0.2) return browse(topic, rng);  // users type "more like ..." too
        // A query of 1-3 words of the topic, one of them sometimes a common word.
        const double n = unit(rng);
        const int len = n < 0.45 ? 1 : n < 0.85 ? 2 : 3;
        int32_t w[3];
        topic_words(topic, len, w, rng);
        if (len > 1 && unit(rng) < 0.3) w[rng() % static_cast<uint64_t>(len)] = of(common, n_common, rng);
        return len == 1 ? code({w[0]}) : len == 2 ? code({w[0], w[1]}) : code({w[0], w[1], w[2]});
      }
      case 2:
        return r < 0.15 ? page(home_pages, n_home_pages, home_suffixes, n_home_suffixes, rng)
                        : page(ads_pages, n_ads_pages, ads_suffixes, n_ads_suffixes, rng);
      default:
        if (r < 0.25) return browse(topic, rng);
        if (r < 0.35) return page(home_pages, n_home_pages, home_suffixes, n_home_suffixes, rng);
        return page(scenario_names + 3 * (scenario - 3), 3, home_suffixes, n_home_suffixes, rng);
    }
  }
};

struct Generator {
  const SyntheticOptions& opt;
  const SyntheticTruth& truth;
  std::vector<Pool> topic_pool;
  Pool all_pool, sponsored_pool;
  std::vector<double> scenario_cum;  // session scenario distribution
  std::vector<int32_t> user_top_topic;
  uint64_t user_seed_base;
  const ContextWords* context = nullptr;
  uint64_t context_seed_base = 0;

  int32_t draw_topic_row(const float* row, Rng& rng) const {
    double t = unit(rng), acc = 0;
    for (int32_t k = 0; k < truth.topics; ++k) {
      acc += row[k];
      if (t < acc) return k;
    }
    return truth.topics - 1;
  }

  int32_t pick_item(int32_t scenario, int32_t topic, int64_t t, Rng& rng) const {
    const double r = unit(rng);
    int32_t item = -1;
    if (scenario == 2) {  // ads: mostly the sponsored subset, topic-agnostic
      item = r < 0.65 ? sponsored_pool.draw(t, rng) : topic_pool[static_cast<size_t>(topic)].draw(t, rng);
    } else {
      const double trending = scenario == 1 ? 0.05 : 0.15;  // search stays on its topic
      item = r < trending ? all_pool.draw(t, rng) : topic_pool[static_cast<size_t>(topic)].draw(t, rng);
    }
    if (item < 0) item = all_pool.draw(t, rng);  // pool empty so far (tiny worlds)
    return item;
  }

  void user(int32_t u, int64_t n, Rows& out) const {
    Rng rng(splitmix64(user_seed_base + static_cast<uint64_t>(u)));
    // Contexts draw from their own stream, so adding them left every other column as it was.
    Rng crng(splitmix64(context_seed_base + static_cast<uint64_t>(u)));
    const float* utopic = &truth.user_topic[static_cast<size_t>(u) * static_cast<size_t>(truth.topics)];
    // Sessions: lengths ~ 1 + geometric (mean 6), starts spread over the year.
    std::vector<int64_t> lens;
    std::geometric_distribution<int64_t> geo_len(1.0 / 6.0);
    for (int64_t total = 0; total < n;) {
      const int64_t len = std::min<int64_t>(1 + geo_len(rng), n - total);
      lens.push_back(len);
      total += len;
    }
    std::vector<int64_t> starts(lens.size());
    for (auto& s : starts) s = kT0 + static_cast<int64_t>(unit(rng) * static_cast<double>(kSpan));
    std::sort(starts.begin(), starts.end());
    std::geometric_distribution<int64_t> geo_gap(1.0 / 30.0);
    std::normal_distribution<float> noise(0.0f, truth.rating_noise);
    int64_t clock = kT0 - 1;
    int32_t topic = draw_topic_row(utopic, rng);
    for (size_t s = 0; s < lens.size(); ++s) {
      const auto scenario = static_cast<int32_t>(draw_cum(scenario_cum.data(), scenario_cum.size(), rng));
      clock = std::max(starts[s], clock + 60);
      // The session topic: the user's strongest for search; otherwise half the time a fresh
      // draw from the user's interests, half a step of the topic chain from the last session.
      if (scenario == 1) {
        topic = user_top_topic[static_cast<size_t>(u)];
      } else if (s == 0 || unit(rng) < 0.5) {
        topic = draw_topic_row(utopic, rng);
      } else {
        topic = draw_topic_row(&truth.topic_transition[static_cast<size_t>(topic) * truth.topics], rng);
      }
      // One request text per session, refined (redrawn) on about a third of its later exposures.
      uint64_t ctx = context->draw(scenario, topic, crng);
      for (int64_t k = 0; k < lens[s]; ++k) {
        if (k > 0) {
          clock += 5 + geo_gap(rng);
          if (scenario != 1)
            topic = draw_topic_row(&truth.topic_transition[static_cast<size_t>(topic) * truth.topics], rng);
          if (unit(crng) < 0.35) ctx = context->draw(scenario, topic, crng);
        }
        const int32_t item = pick_item(scenario, topic, clock, rng);
        const bool clicked = unit(rng) < truth.click_probability(u, item, scenario);
        const double b = unit(rng);
        float label = 0;
        int16_t beh = kImpression;
        if (clicked) {
          const float er = truth.expected_rating(u, item);
          const float star = std::clamp(std::round(er + noise(rng)), 1.0f, 5.0f);
          if (b < 0.25) {
            beh = kRating;
            label = star;
          } else if (b < 0.30 + 0.15 * (er - 1.0) / 4.0) {
            beh = kWishlist;
            label = 1;
          } else {
            beh = kClick;
            label = 1;
          }
        }
        if (!clicked && !opt.impressions()) continue;
        const size_t r = out.n++;
        out.user[r] = u;
        out.item[r] = item;
        out.rating[r] = label;
        out.ts[r] = clock;
        out.scen[r] = static_cast<int16_t>(scenario);
        out.beh[r] = beh;
        out.ctx[r] = ctx;
      }
    }
  }
};

/// text_quality: a share of the titles end with a word naming the item's quality quintile. Its
/// own random stream, so the rest of the world is the same at any share.
void add_quality_words(const SyntheticOptions& opt, SyntheticTruth& truth, Dataset& ds, std::set<std::string>& used) {
  const size_t I = truth.item_quality.size();
  truth.item_quality_tier.assign(I, -1);
  truth.quality_words.clear();
  if (opt.text_quality() <= 0) return;
  Rng rng(derive_seed(opt.seed(), "synthetic-quality-words"));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  constexpr int kTiers = 5;
  truth.quality_words.assign(kTiers, {});
  for (auto& words : truth.quality_words)
    while (words.size() < 4) {
      std::string w = make_word(rng, 3);
      if (used.insert(w).second) words.push_back(std::move(w));
    }
  std::vector<float> sorted = truth.item_quality;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < I; ++i) {
    if (unit(rng) >= opt.text_quality()) continue;
    const auto rank = size_t(std::lower_bound(sorted.begin(), sorted.end(), truth.item_quality[i]) - sorted.begin());
    const auto tier = static_cast<int8_t>(std::min<size_t>(kTiers - 1, rank * kTiers / I));
    truth.item_quality_tier[i] = tier;
    const auto& words = truth.quality_words[size_t(tier)];
    ds.item_text.set(static_cast<int32_t>(i), "title",
                     ds.item_text.get(static_cast<int32_t>(i), "title") + " " + words[rng() % words.size()]);
  }
}

void make_text(const SyntheticOptions& opt, SyntheticTruth& truth, Dataset& ds) {
  Rng rng(derive_seed(opt.seed(), "synthetic-text"));
  const int32_t T = truth.topics;
  std::set<std::string> used;
  auto fresh = [&](int syllables) {
    for (;;) {
      std::string w = make_word(rng, syllables);
      if (used.insert(w).second) return w;
    }
  };
  truth.topic_names.clear();
  truth.topic_words.assign(static_cast<size_t>(T), {});
  for (int32_t t = 0; t < T; ++t) {
    std::string name = fresh(3);
    name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
    truth.topic_names.push_back(name);
    for (int w = 0; w < 24; ++w)
      truth.topic_words[static_cast<size_t>(t)].push_back(fresh(2 + static_cast<int>(rng() % 2)));
  }
  truth.common_words.clear();
  for (int w = 0; w < 32; ++w) truth.common_words.push_back(fresh(1 + static_cast<int>(rng() % 2)));

  auto pick = [&](const std::vector<std::string>& v) -> const std::string& { return v[rng() % v.size()]; };
  auto second_topic = [&](const float* row, int32_t main) {
    int32_t best = main;
    float bw = -1;
    for (int32_t k = 0; k < T; ++k)
      if (k != main && row[k] > bw) bw = row[k], best = k;
    return best;
  };
  ds.item_text = TextCatalog({"title", "description"});
  ds.item_text.resize(static_cast<int32_t>(truth.item_main_topic.size()));
  for (size_t i = 0; i < truth.item_main_topic.size(); ++i) {
    const int32_t main = truth.item_main_topic[i];
    const auto& mv = truth.topic_words[static_cast<size_t>(main)];
    const auto& sv = truth.topic_words[static_cast<size_t>(second_topic(&truth.item_topic[i * T], main))];
    // Title: the first word from the main topic, the rest mostly so; no word twice.
    std::vector<const std::string*> tw{&pick(mv)};
    const size_t n_title = 3 + rng() % 3;
    while (tw.size() < n_title) {
      const std::string* c = unit(rng) < 0.75 ? &pick(mv) : &pick(truth.common_words);
      if (std::find_if(tw.begin(), tw.end(), [&](const std::string* o) { return *o == *c; }) == tw.end())
        tw.push_back(c);
    }
    std::string title = *tw[0];
    for (size_t w = 1; w < tw.size(); ++w) title += " " + *tw[w];
    std::string desc;
    const int dw = 10 + static_cast<int>(rng() % 11);
    for (int w = 0; w < dw; ++w) {
      const double r = unit(rng);
      if (w) desc += ' ';
      desc += r < 0.55 ? pick(mv) : r < 0.75 ? pick(sv) : pick(truth.common_words);
    }
    ds.item_text.set(static_cast<int32_t>(i), "title", std::move(title));
    ds.item_text.set(static_cast<int32_t>(i), "description", std::move(desc));
  }
  add_quality_words(opt, truth, ds, used);
  ds.user_text = TextCatalog({"profile"});
  const auto U = truth.user_topic.size() / static_cast<size_t>(T);
  ds.user_text.resize(static_cast<int32_t>(U));
  std::vector<int32_t> order(static_cast<size_t>(T));
  for (size_t u = 0; u < U; ++u) {
    const float* row = &truth.user_topic[u * T];
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
    // "likes <strongest topic> w w w [and <second topic> w w]": distinct words of those topics.
    auto describe = [&](int32_t topic, size_t n) {
      const auto& v = truth.topic_words[static_cast<size_t>(topic)];
      std::string s = truth.topic_names[static_cast<size_t>(topic)];
      std::vector<size_t> picked;
      while (picked.size() < n) {
        const size_t k = rng() % v.size();
        if (std::find(picked.begin(), picked.end(), k) == picked.end()) picked.push_back(k);
      }
      for (size_t k : picked) s += " " + v[k];
      return s;
    };
    std::string p = "likes " + describe(order[0], 3);  // vocabularies hold 24 words
    if (T > 1 && row[order[1]] > 0.15f) p += " and " + describe(order[1], 2);
    ds.user_text.set(static_cast<int32_t>(u), "profile", std::move(p));
  }
}

}  // namespace

float SyntheticTruth::affinity(int32_t user, int32_t item) const {
  const float* a = &user_topic[static_cast<size_t>(user) * static_cast<size_t>(topics)];
  const float* b = &item_topic[static_cast<size_t>(item) * static_cast<size_t>(topics)];
  float s = 0;
  for (int32_t k = 0; k < topics; ++k) s += a[k] * b[k];
  return s;
}

float SyntheticTruth::click_probability(int32_t user, int32_t item, int32_t scenario) const {
  const auto s = static_cast<size_t>(scenario);
  return sigmoid(scenario_bias[s] + scenario_temperature[s] *
                                        (4.0f * affinity(user, item) + item_quality[static_cast<size_t>(item)] - 1.0f));
}

float SyntheticTruth::expected_rating(int32_t user, int32_t item) const {
  return 1.0f + 4.0f * sigmoid(5.0f * (affinity(user, item) - 0.2f) + item_quality[static_cast<size_t>(item)]);
}

SyntheticWorld generate_world(const SyntheticOptions& opt) {
  MTREC_CHECK(opt.users() > 0 && opt.items() > 0,
              "synthetic world needs users > 0 and items > 0, got users=", opt.users(), " items=", opt.items());
  MTREC_CHECK(opt.topics() > 0 && opt.topics() <= 4096, "topics must lie in [1, 4096], got ", opt.topics());
  MTREC_CHECK(opt.scenarios() > 0 && opt.scenarios() <= 1000, "scenarios must lie in [1, 1000], got ", opt.scenarios());
  MTREC_CHECK(opt.interactions() > 0, "interactions must be > 0, got ", opt.interactions());
  MTREC_CHECK(opt.text_quality() >= 0 && opt.text_quality() <= 1, "text_quality must lie in [0, 1], got ",
              opt.text_quality());
  MTREC_CHECK(opt.late_item_fraction() >= 0 && opt.late_item_fraction() < 1,
              "late_item_fraction must lie in [0, 1), got ", opt.late_item_fraction());
  MTREC_CHECK(opt.topic_stickiness() >= 0 && opt.topic_stickiness() <= 1, "topic_stickiness must lie in [0, 1], got ",
              opt.topic_stickiness());
  const int32_t U = opt.users(), I = opt.items(), T = opt.topics(), S = opt.scenarios();
  SyntheticWorld w;
  SyntheticTruth& truth = w.truth;
  truth.topics = T;
  Rng rng(derive_seed(opt.seed(), "synthetic-world"));

  // Items: a main topic each (shuffled round robin, so every topic has items), a sparse mixture
  // around it, quality, popularity, release time, sponsorship.
  truth.item_main_topic.resize(static_cast<size_t>(I));
  for (int32_t i = 0; i < I; ++i) truth.item_main_topic[static_cast<size_t>(i)] = i % T;
  std::shuffle(truth.item_main_topic.begin(), truth.item_main_topic.end(), rng);
  truth.item_topic.assign(static_cast<size_t>(I) * T, 0.0f);
  truth.item_quality.resize(static_cast<size_t>(I));
  std::vector<double> popularity(static_cast<size_t>(I));
  std::normal_distribution<double> normal(0.0, 1.0);
  for (size_t i = 0; i < static_cast<size_t>(I); ++i) {
    auto g = dirichlet(rng, T, 0.2);
    for (int32_t k = 0; k < T; ++k) truth.item_topic[i * T + k] = 0.25f * g[static_cast<size_t>(k)];
    truth.item_topic[i * T + truth.item_main_topic[i]] += 0.75f;
    truth.item_quality[i] = static_cast<float>(std::clamp(0.6 * normal(rng), -2.0, 2.0));
    popularity[i] = std::exp(normal(rng));
  }
  truth.item_release.assign(static_cast<size_t>(I), kT0);
  const auto n_late = std::min<int64_t>(I - 1, std::llround(I * opt.late_item_fraction()));
  std::vector<int32_t> perm(static_cast<size_t>(I));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  for (int64_t k = 0; k < n_late; ++k) {
    const auto i = static_cast<size_t>(perm[static_cast<size_t>(k)]);
    truth.item_release[i] = kT0 + kSpan * 9 / 10 + static_cast<int64_t>(unit(rng) * (kSpan / 10));
    popularity[i] *= 2.0;  // new items get a push, so cold start is visible in the data
  }
  truth.item_sponsored.assign(static_cast<size_t>(I), 0);
  std::vector<int32_t> by_quality(perm);
  std::sort(by_quality.begin(), by_quality.end(), [&](int32_t a, int32_t b) {
    return truth.item_quality[static_cast<size_t>(a)] != truth.item_quality[static_cast<size_t>(b)]
               ? truth.item_quality[static_cast<size_t>(a)] > truth.item_quality[static_cast<size_t>(b)]
               : a < b;
  });
  const size_t n_sponsored = std::max<size_t>(1, static_cast<size_t>(I) * 15 / 100);
  for (size_t k = 0; k < n_sponsored; ++k) truth.item_sponsored[static_cast<size_t>(by_quality[k])] = 1;

  // Users: a sparse Dirichlet mixture over topics.
  truth.user_topic.resize(static_cast<size_t>(U) * T);
  std::vector<int32_t> top_topic(static_cast<size_t>(U));
  for (size_t u = 0; u < static_cast<size_t>(U); ++u) {
    auto g = dirichlet(rng, T, 0.4);
    std::copy(g.begin(), g.end(), truth.user_topic.begin() + static_cast<std::ptrdiff_t>(u * T));
    top_topic[u] = static_cast<int32_t>(std::max_element(g.begin(), g.end()) - g.begin());
  }

  // Topic chain: sticky diagonal, the rest spread unevenly (some topics lead to others).
  truth.topic_transition.assign(static_cast<size_t>(T) * T, 0.0f);
  for (int32_t a = 0; a < T; ++a) {
    if (T == 1) {
      truth.topic_transition[0] = 1.0f;
      break;
    }
    auto g = dirichlet(rng, T - 1, 0.5);
    for (int32_t b = 0, k = 0; b < T; ++b)
      truth.topic_transition[static_cast<size_t>(a) * T + b] =
          b == a ? static_cast<float>(opt.topic_stickiness())
                 : static_cast<float>(1.0 - opt.topic_stickiness()) * g[static_cast<size_t>(k++)];
  }

  // Scenarios: home feed, search (intentful: higher bias, sharper), ads (rarer clicks, flatter).
  truth.scenario_bias.resize(static_cast<size_t>(S));
  truth.scenario_temperature.resize(static_cast<size_t>(S));
  std::vector<double> scenario_weight(static_cast<size_t>(S));
  const float base_bias[] = {-0.8f, -0.2f, -1.8f}, base_temp[] = {1.0f, 1.5f, 0.8f};
  const double base_weight[] = {4.0, 2.0, 1.5};
  for (int32_t s = 0; s < S; ++s) {
    if (s < 3) {
      truth.scenario_bias[static_cast<size_t>(s)] = base_bias[s];
      truth.scenario_temperature[static_cast<size_t>(s)] = base_temp[s];
      scenario_weight[static_cast<size_t>(s)] = base_weight[s];
    } else {
      truth.scenario_bias[static_cast<size_t>(s)] = static_cast<float>(-1.5 + unit(rng));
      truth.scenario_temperature[static_cast<size_t>(s)] = static_cast<float>(0.7 + 0.8 * unit(rng));
      scenario_weight[static_cast<size_t>(s)] = 1.5;
    }
  }

  // Exposures per user: log-normal activity scaled to the requested total (at least 3 each).
  std::vector<int64_t> count(static_cast<size_t>(U));
  {
    std::vector<double> act(static_cast<size_t>(U));
    double sum = 0;
    for (auto& a : act) sum += (a = std::exp(0.7 * normal(rng)));
    for (size_t u = 0; u < act.size(); ++u)
      count[u] = std::max<int64_t>(3, std::llround(static_cast<double>(opt.interactions()) * act[u] / sum));
  }

  // Text first (its own stream): contexts are made of the topics' words.
  Dataset& ds = w.data;
  make_text(opt, truth, ds);
  ContextWords context_words;
  context_words.build(truth, S, opt.seed());
  Generator gen{opt, truth, {}, {}, {}, {}, std::move(top_topic), derive_seed(opt.seed(), "synthetic-users")};
  gen.context = &context_words;
  gen.context_seed_base = derive_seed(opt.seed(), "synthetic-contexts");
  {
    std::vector<std::vector<int32_t>> members(static_cast<size_t>(T));
    std::vector<int32_t> all, sponsored;
    for (int32_t i = 0; i < I; ++i) {
      members[static_cast<size_t>(truth.item_main_topic[static_cast<size_t>(i)])].push_back(i);
      all.push_back(i);
      if (truth.item_sponsored[static_cast<size_t>(i)]) sponsored.push_back(i);
    }
    gen.topic_pool.resize(static_cast<size_t>(T));
    for (int32_t t = 0; t < T; ++t)
      gen.topic_pool[static_cast<size_t>(t)].build(std::move(members[static_cast<size_t>(t)]), truth.item_release,
                                                   popularity);
    gen.all_pool.build(std::move(all), truth.item_release, popularity);
    gen.sponsored_pool.build(std::move(sponsored), truth.item_release, popularity);
    double acc = 0;
    for (double sw : scenario_weight) gen.scenario_cum.push_back(acc += sw);
  }

  // Rows: blocks of users in parallel. With impressions every exposure is a row, so each block
  // writes straight into its window of the final arrays; without them blocks fill local buffers
  // that are concatenated in block order. Either way the result ignores the thread count.
  Interactions& x = w.data.interactions;
  x.has_rating = x.has_timestamp = x.has_context = true;
  const size_t n_blocks = (static_cast<size_t>(U) + kBlockUsers - 1) / kBlockUsers;
  std::vector<size_t> block_offset(n_blocks + 1, 0);
  for (size_t b = 0; b < n_blocks; ++b) {
    size_t n = 0;
    for (size_t u = b * kBlockUsers; u < std::min<size_t>(U, (b + 1) * kBlockUsers); ++u)
      n += static_cast<size_t>(count[u]);
    block_offset[b + 1] = block_offset[b] + n;
  }
  const size_t total_exposures = block_offset[n_blocks];
  auto alloc = [](Interactions& t, size_t n) {
    t.user.resize(n), t.item.resize(n), t.rating.resize(n), t.timestamp.resize(n), t.scenario.resize(n),
        t.behavior.resize(n);
  };
  std::vector<Interactions> local(opt.impressions() ? 0 : n_blocks);
  std::vector<std::vector<uint64_t>> local_codes(local.size());
  std::vector<uint64_t> codes;  // per row, resolved into x.context below
  std::vector<size_t> block_rows(n_blocks, 0);
  if (opt.impressions()) {
    alloc(x, total_exposures);
    codes.resize(total_exposures);
  }
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mu;
  auto worker = [&] {
    try {
      for (size_t b; (b = next.fetch_add(1)) < n_blocks;) {
        Interactions* dst = &x;
        uint64_t* dst_codes = codes.data();
        size_t off = block_offset[b];
        if (!opt.impressions()) {
          dst = &local[b];
          alloc(*dst, block_offset[b + 1] - block_offset[b]);
          local_codes[b].resize(block_offset[b + 1] - block_offset[b]);
          dst_codes = local_codes[b].data();
          off = 0;
        }
        Rows rows{dst->user.data() + off,
                  dst->item.data() + off,
                  dst->rating.data() + off,
                  dst->timestamp.data() + off,
                  dst->scenario.data() + off,
                  dst->behavior.data() + off,
                  dst_codes + off};
        for (size_t u = b * kBlockUsers; u < std::min<size_t>(U, (b + 1) * kBlockUsers); ++u)
          gen.user(static_cast<int32_t>(u), count[u], rows);
        block_rows[b] = rows.n;
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mu);
      if (!failure) failure = std::current_exception();
    }
  };
  int threads = opt.threads() > 0 ? opt.threads() : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = static_cast<int>(std::min<size_t>(static_cast<size_t>(threads), n_blocks));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  if (!opt.impressions()) {
    size_t n = 0;
    for (size_t r : block_rows) n += r;
    alloc(x, n);
    codes.resize(n);
    size_t at = 0;
    for (size_t b = 0; b < n_blocks; ++b) {
      auto copy = [&](const auto& src, auto& dst) {
        std::copy(src.begin(), src.begin() + static_cast<std::ptrdiff_t>(block_rows[b]),
                  dst.begin() + static_cast<std::ptrdiff_t>(at));
      };
      const Interactions& l = local[b];
      copy(l.user, x.user), copy(l.item, x.item), copy(l.rating, x.rating), copy(l.timestamp, x.timestamp),
          copy(l.scenario, x.scenario), copy(l.behavior, x.behavior), copy(local_codes[b], codes);
      at += block_rows[b];
      local[b] = Interactions();
      local_codes[b] = {};
    }
  }
  // Context codes -> ids in order of first appearance; equal texts share one id.
  {
    IdMap texts;
    std::unordered_map<uint64_t, int32_t> id_of;
    x.context.resize(codes.size());
    for (size_t r = 0; r < codes.size(); ++r) {
      auto [it, fresh] = id_of.emplace(codes[r], 0);
      if (fresh) it->second = texts.intern(context_words.text(codes[r]));
      x.context[r] = it->second;
    }
    codes = {};
    ds.context_text = TextCatalog({"text"});
    ds.context_text.resize(texts.size());
    for (int32_t c = 0; c < texts.size(); ++c) ds.context_text.set(c, "text", texts.raw(c));
  }

  ds.name = "synthetic";
  for (int32_t u = 0; u < U; ++u) ds.users.intern("u" + std::to_string(u));
  for (int32_t i = 0; i < I; ++i) ds.items.intern("i" + std::to_string(i));
  const char* names[] = {"home_feed", "search", "ads"};
  for (int32_t s = 0; s < S; ++s) ds.scenarios.intern(s < 3 ? std::string(names[s]) : "scenario_" + std::to_string(s));
  for (const char* b : {"click", "rating", "wishlist", "impression"}) ds.behaviors.intern(b);
  return w;
}

std::vector<std::string> check_world(const SyntheticWorld& world) {
  std::vector<std::string> problems;
  auto fail = [&](std::string msg) {
    if (problems.size() < 20) problems.push_back(std::move(msg));
  };
  const Dataset& ds = world.data;
  const SyntheticTruth& t = world.truth;
  try {
    ds.validate();
  } catch (const std::exception& e) {
    fail(std::string("Dataset::validate: ") + e.what());
    return problems;
  }
  const auto& x = ds.interactions;
  if (!x.has_timestamp || !x.has_rating) fail("synthetic interactions must have ratings (labels) and timestamps");
  if (t.item_release.size() != static_cast<size_t>(ds.num_items()) ||
      t.user_topic.size() != static_cast<size_t>(ds.num_users()) * static_cast<size_t>(t.topics))
    fail("truth sizes do not match the dataset");
  if (!problems.empty()) return problems;
  const int32_t n_beh = ds.behaviors.size();
  for (size_t r = 0; r < x.size(); ++r) {
    if (r > 0 && x.user[r] < x.user[r - 1]) fail("row " + std::to_string(r) + ": rows are not grouped by user");
    if (r > 0 && x.user[r] == x.user[r - 1] && x.timestamp[r] <= x.timestamp[r - 1])
      fail("row " + std::to_string(r) + ": timestamp not increasing for user " + std::to_string(x.user[r]));
    if (x.timestamp[r] < t.item_release[static_cast<size_t>(x.item[r])])
      fail("row " + std::to_string(r) + ": item " + std::to_string(x.item[r]) + " shown before its release");
    const int16_t b = x.behavior[r];
    const float y = x.rating[r];
    if (b < 0 || b >= n_beh) {
      fail("row " + std::to_string(r) + ": behaviour id out of range");
    } else if (b == kImpression ? y != 0.0f : b == kRating ? (y < 1 || y > 5 || y != std::round(y)) : y != 1.0f) {
      fail("row " + std::to_string(r) + ": label " + std::to_string(y) + " does not fit behaviour " +
           ds.behaviors.raw(b));
    }
    if (x.scenario[r] < 0 || x.scenario[r] >= ds.scenarios.size())
      fail("row " + std::to_string(r) + ": scenario id out of range");
    if (x.has_context && (x.context[r] < 0 || x.context[r] >= ds.context_text.size()))
      fail("row " + std::to_string(r) + ": context id " + std::to_string(x.context[r]) + " is not in [0, " +
           std::to_string(ds.context_text.size()) + ")");
  }
  if (!x.has_context) fail("synthetic interactions must have contexts");
  for (int32_t c = 0; c < ds.context_text.size(); ++c)
    if (ds.context_text.get(c, "text").empty()) fail("context " + std::to_string(c) + " has no text");
  for (int32_t i = 0; i < ds.num_items(); ++i)
    if (ds.item_text.get(i, "title").empty() || ds.item_text.get(i, "description").empty())
      fail("item " + std::to_string(i) + " has no title or description");
  for (int32_t u = 0; u < ds.num_users(); ++u)
    if (ds.user_text.get(u, "profile").empty()) fail("user " + std::to_string(u) + " has no profile");
  return problems;
}

}  // namespace mtrec
