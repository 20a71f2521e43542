#include "mtrec/text/safetensors.h"

#include "mtrec/core/check.h"
#include "mtrec/core/io.h"
#include "test_util.h"

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <cstring>

namespace mtrec {
namespace {

using ::mtrec::test::TempDir;

template <typename T>
at::Tensor from_bits(std::vector<T> bits, at::ScalarType type) {
  at::Tensor t = torch::empty({static_cast<int64_t>(bits.size())}, torch::TensorOptions().dtype(type));
  std::memcpy(t.data_ptr(), bits.data(), bits.size() * sizeof(T));
  return t;
}

// A file built by hand from the format description: an oracle independent of our writer.
std::string file_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

std::string le16(std::vector<uint16_t> v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 2); }

std::string error_of(const std::string& path) {
  try {
    read_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, ReadsAHandWrittenFile) {
  TempDir dir;
  // F16 1.0, -2.5, 65504 and BF16 1.0, -2.5, 3.140625, shape [1, 3] each; metadata ignored.
  std::string header = R"({"__metadata__":{"format":"pt"},"h":{"dtype":"F16","shape":[1,3],"data_offsets":[0,6]},)"
                       R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[6,12]}})";
  std::string path =
      dir.write("m.safetensors", file_bytes(header, le16({0x3C00, 0xC100, 0x7BFF}) + le16({0x3F80, 0xC020, 0x4049})));
  auto w = read_safetensors(path);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w.at("h").scalar_type(), torch::kFloat);
  EXPECT_EQ(w.at("h").sizes(), (std::vector<int64_t>{1, 3}));
  EXPECT_TRUE(torch::equal(w.at("h"), torch::tensor({{1.0f, -2.5f, 65504.0f}})));
  EXPECT_TRUE(torch::equal(w.at("b"), torch::tensor({1.0f, -2.5f, 3.140625f})));

  auto ordered = read_safetensors_ordered(path);  // data order, not JSON order
  EXPECT_EQ(ordered[0].first, "h");
  EXPECT_EQ(ordered[1].first, "b");
  auto info = read_safetensors_header(path);
  ASSERT_EQ(info.size(), 2u);
  EXPECT_EQ(info[1].dtype, "BF16");
  EXPECT_EQ(info[1].begin, 6);
  EXPECT_EQ(info[1].end, 12);
}

TEST(Safetensors, RoundTripsEveryDtypeExactly) {
  TempDir dir;
  std::vector<std::pair<std::string, at::Tensor>> in = {
      {"f32", torch::tensor({{0.1f, -3.0e-38f}, {1e30f, 7.0f}})},
      {"f16", from_bits<uint16_t>({0x3C00, 0xC100, 0x7BFF, 0x0001}, at::kHalf)},  // 1, -2.5, 65504, 2^-24
      {"bf16", from_bits<uint16_t>({0x3F80, 0xC020, 0x4049, 0x0001}, at::kBFloat16)},
      {"f64", torch::tensor({0.1, -1e300}, torch::kDouble)},
      {"i64", torch::tensor({int64_t{1} << 60, int64_t{-5}}, torch::kLong)},
      {"i32", torch::tensor({-7, 9}, torch::kInt)},
      {"u8", torch::tensor({0, 255}, torch::kByte)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(2.5f)},
      {"empty", torch::zeros({0, 4})},
  };
  const std::string path = dir.path("all.safetensors");
  write_safetensors(path, in, {{"format", "pt"}, {"source", "mtrec"}});

  // Data starts 8-byte aligned, as the format recommends.
  std::string raw = read_file(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(raw[i]);
  EXPECT_EQ(n % 8, 0u);

  auto kept = read_safetensors_ordered(path, SafetensorsReadOptions().keep_dtype(true));
  ASSERT_EQ(kept.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(kept[i].first, in[i].first);
    EXPECT_EQ(kept[i].second.scalar_type(), in[i].second.scalar_type()) << in[i].first;
    EXPECT_EQ(kept[i].second.sizes(), in[i].second.sizes()) << in[i].first;
    const int64_t bytes = in[i].second.numel() * in[i].second.element_size();
    if (bytes > 0) {
      EXPECT_EQ(std::memcmp(kept[i].second.data_ptr(), in[i].second.data_ptr(), bytes), 0) << in[i].first;
    }
  }

  auto w = read_safetensors(path);  // floats -> float32, integers -> int64
  EXPECT_TRUE(torch::equal(w.at("f16"), torch::tensor({1.0f, -2.5f, 65504.0f, 5.9604644775390625e-08f})));
  EXPECT_TRUE(torch::equal(w.at("bf16"), torch::tensor({1.0f, -2.5f, 3.140625f, 9.183549615799121e-41f})));
  EXPECT_EQ(w.at("f64").scalar_type(), torch::kFloat);
  EXPECT_FLOAT_EQ(w.at("f64")[0].item<float>(), 0.1f);
  EXPECT_TRUE(torch::equal(w.at("i64"), torch::tensor({int64_t{1} << 60, int64_t{-5}})));
  EXPECT_TRUE(torch::equal(w.at("i32"), torch::tensor({int64_t{-7}, int64_t{9}})));
  EXPECT_TRUE(torch::equal(w.at("bool"), torch::tensor({int64_t{1}, int64_t{0}, int64_t{1}})));
  EXPECT_EQ(w.at("scalar").dim(), 0);
  EXPECT_EQ(w.at("empty").sizes(), (std::vector<int64_t>{0, 4}));

  // Non-contiguous input is written in logical order; the map overload works too.
  at::Tensor base = torch::arange(6, torch::kFloat).reshape({2, 3});
  write_safetensors(dir.path("t.safetensors"), std::map<std::string, at::Tensor>{{"t", base.t()}});
  EXPECT_TRUE(torch::equal(read_safetensors(dir.path("t.safetensors")).at("t"), base.t()));
}

TEST(Safetensors, MalformedFilesGiveErrorsNamingFileAndTensor) {
  TempDir dir;
  const std::string ok_data = le16({0x3C00, 0x3C00});
  auto has = [](const std::string& msg, const std::string& part) { return msg.find(part) != std::string::npos; };

  std::string m = error_of(dir.write("short.safetensors", "abc"));
  EXPECT_TRUE(has(m, "short.safetensors") && has(m, "8-byte")) << m;

  std::string full = file_bytes(R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", ok_data);
  m = error_of(dir.write("cut.safetensors", full.substr(0, 20)));  // header cut off
  EXPECT_TRUE(has(m, "cut.safetensors") && has(m, "header length")) << m;

  m = error_of(dir.write("beyond.safetensors",
                         file_bytes(R"({"layer.w":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", ok_data)));
  EXPECT_TRUE(has(m, "beyond.safetensors") && has(m, "layer.w") && has(m, "past")) << m;

  m = error_of(dir.write("dtype.safetensors",
                         file_bytes(R"({"q.w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", ok_data)));
  EXPECT_TRUE(has(m, "dtype.safetensors") && has(m, "q.w") && has(m, "F8_E4M3")) << m;

  m = error_of(
      dir.write("size.safetensors", file_bytes(R"({"s":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", ok_data)));
  EXPECT_TRUE(has(m, "'s'") && has(m, "needs 8")) << m;

  m = error_of(dir.write("overlap.safetensors", file_bytes(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                                                           R"("b":{"dtype":"F16","shape":[1],"data_offsets":[2,4]}})",
                                                           ok_data)));
  EXPECT_TRUE(has(m, "overlap")) << m;

  m = error_of(dir.write("json.safetensors", file_bytes(R"({"a":{"dtype":)", ok_data)));
  EXPECT_TRUE(has(m, "json.safetensors") && has(m, "JSON")) << m;

  m = error_of(dir.write("shape.safetensors",
                         file_bytes(R"({"neg":{"dtype":"F16","shape":[-2],"data_offsets":[0,4]}})", ok_data)));
  EXPECT_TRUE(has(m, "neg") && has(m, "shape")) << m;

  EXPECT_TRUE(has(error_of(dir.path("absent.safetensors")), "absent.safetensors"));

  // Writing refuses duplicate names and unsupported dtypes.
  at::Tensor t = torch::ones({2});
  EXPECT_THROW(write_safetensors(dir.path("dup.safetensors"), {{"x", t}, {"x", t}}), Error);
  EXPECT_THROW(write_safetensors(dir.path("c.safetensors"), {{"z", torch::ones({2}, torch::kComplexFloat)}}), Error);
  EXPECT_FALSE(std::filesystem::exists(dir.path("dup.safetensors")));
}

}  // namespace
}  // namespace mtrec
