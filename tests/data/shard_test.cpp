// tests/data/shard_test.cpp — the llm.c shard layout, byte for byte, and one clear error per way a
// shard can be bad.
#include "engine/data/shard.h"

#include <sys/stat.h>

#include <array>
#include <cstring>
#include <fstream>

#include "base/error.h"
#include "tests/support/support.h"

namespace ferry::data {
namespace {

namespace fs = std::filesystem;
using test::file_bytes;
using test::write_bytes;

// A shard written by hand from the published layout, independent of write_shard.
std::vector<char> handmade_shard(int32_t magic, int32_t version, int32_t count, const std::vector<uint16_t>& tokens) {
  std::vector<char> bytes(1024 + tokens.size() * 2, 0);
  std::memcpy(bytes.data() + 0, &magic, 4);
  std::memcpy(bytes.data() + 4, &version, 4);
  std::memcpy(bytes.data() + 8, &count, 4);
  if (!tokens.empty()) std::memcpy(bytes.data() + 1024, tokens.data(), tokens.size() * 2);
  return bytes;
}

// Runs `f`, expects a UserError, and checks its message is one line naming the file and the problem.
template <typename F>
void expect_shard_error(F&& f, const std::string& file, const std::string& problem) {
  try {
    f();
    FAIL() << "expected a UserError about " << problem;
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(file), std::string::npos) << msg;
    EXPECT_NE(msg.find(problem), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(Shard, WriterProducesTheLlmcLayoutByteForByte) {
  test::TempDir dir;
  std::mt19937_64 rng(test::test_seed());
  std::vector<uint16_t> tokens(777);
  for (auto& t : tokens) t = static_cast<uint16_t>(rng() % 50257);
  write_shard(dir.path() / "a.bin", tokens);
  EXPECT_EQ(file_bytes(dir.path() / "a.bin"),
            handmade_shard(20240520, 1, static_cast<int32_t>(tokens.size()), tokens));
}

TEST(Shard, HandmadeShardReadsBack) {
  test::TempDir dir;
  const std::vector<uint16_t> tokens = {50256, 0, 1, 17, 50255, 40000};
  write_bytes(dir.path() / "x.bin", handmade_shard(20240520, 1, 6, tokens));
  EXPECT_EQ(read_shard(dir.path() / "x.bin", 50257), tokens);
  const MappedShard mapped(dir.path() / "x.bin", 50257);
  ASSERT_EQ(mapped.size(), tokens.size());
  EXPECT_TRUE(std::equal(tokens.begin(), tokens.end(), mapped.tokens().begin()));
}

TEST(Shard, EmptyShardIsValid) {
  test::TempDir dir;
  write_shard(dir.path() / "e.bin", std::span<const uint16_t>{});
  EXPECT_EQ(fs::file_size(dir.path() / "e.bin"), 1024u);
  EXPECT_TRUE(read_shard(dir.path() / "e.bin", 50257).empty());
}

TEST(Shard, Int32WriterRejectsIdsOutsideTheVocabulary) {
  test::TempDir dir;
  const std::vector<int32_t> ok = {1, 2, 50256};
  write_shard(dir.path() / "ok.bin", ok, 50257);
  EXPECT_EQ(read_shard(dir.path() / "ok.bin", 50257), (std::vector<uint16_t>{1, 2, 50256}));
  const std::vector<int32_t> too_big = {1, 50257};
  expect_shard_error([&] { write_shard(dir.path() / "big.bin", too_big, 50257); }, "big.bin", "token id 50257");
  const std::vector<int32_t> negative = {-1};
  expect_shard_error([&] { write_shard(dir.path() / "neg.bin", negative, 50257); }, "neg.bin", "token id -1");
  EXPECT_FALSE(fs::exists(dir.path() / "big.bin"));
}

TEST(Shard, FailedWriteLeavesTheExistingShardIntact) {
  test::TempDir dir;
  const std::vector<uint16_t> good = {5, 6, 7};
  write_shard(dir.path() / "s.bin", good);
  const auto before = file_bytes(dir.path() / "s.bin");
  // A folder where the temporary file would go makes the write fail before the rename.
  fs::create_directory(dir.path() / ("s.bin.tmp." + std::to_string(::getpid())));
  const std::vector<uint16_t> other = {1, 2, 3, 4};
  EXPECT_THROW(write_shard(dir.path() / "s.bin", other), UserError);
  EXPECT_EQ(file_bytes(dir.path() / "s.bin"), before);
  // No stray temporary files besides the folder we planted.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 2u);
}

TEST(Shard, RewriteReplacesTheShard) {
  test::TempDir dir;
  write_shard(dir.path() / "s.bin", std::vector<uint16_t>{5, 6, 7});
  write_shard(dir.path() / "s.bin", std::vector<uint16_t>{9});
  EXPECT_EQ(read_shard(dir.path() / "s.bin", 50257), std::vector<uint16_t>{9});
}

TEST(Shard, WrongMagicNamesTheFile) {
  test::TempDir dir;
  write_bytes(dir.path() / "m.bin", handmade_shard(20240326, 1, 2, {1, 2}));
  expect_shard_error([&] { read_shard(dir.path() / "m.bin", 50257); }, "m.bin", "wrong magic 20240326");
}

TEST(Shard, WrongVersionNamesTheFile) {
  test::TempDir dir;
  write_bytes(dir.path() / "v.bin", handmade_shard(20240520, 2, 2, {1, 2}));
  expect_shard_error([&] { read_shard(dir.path() / "v.bin", 50257); }, "v.bin", "unsupported version 2");
}

TEST(Shard, TruncatedHeaderNamesTheFile) {
  test::TempDir dir;
  auto bytes = handmade_shard(20240520, 1, 0, {});
  bytes.resize(100);
  write_bytes(dir.path() / "h.bin", bytes);
  expect_shard_error([&] { read_shard(dir.path() / "h.bin", 50257); }, "h.bin", "truncated header");
  write_bytes(dir.path() / "zero.bin", {});
  expect_shard_error([&] { read_shard(dir.path() / "zero.bin", 50257); }, "zero.bin", "truncated header");
}

TEST(Shard, TruncatedBodyNamesTheFile) {
  test::TempDir dir;
  auto bytes = handmade_shard(20240520, 1, 10, std::vector<uint16_t>(10, 3));
  bytes.resize(bytes.size() - 3);  // cut mid-token
  write_bytes(dir.path() / "t.bin", bytes);
  expect_shard_error([&] { read_shard(dir.path() / "t.bin", 50257); }, "t.bin", "truncated body");
}

TEST(Shard, SizeNotMatchingTheHeaderNamesTheFile) {
  test::TempDir dir;
  // The header claims 4 tokens, the file holds 6.
  write_bytes(dir.path() / "s.bin", handmade_shard(20240520, 1, 4, std::vector<uint16_t>(6, 3)));
  expect_shard_error([&] { read_shard(dir.path() / "s.bin", 50257); }, "s.bin", "does not match the header");
}

TEST(Shard, TokenOutsideTheVocabularyNamesFileAndPosition) {
  test::TempDir dir;
  std::vector<uint16_t> tokens(1000, 7);
  tokens[613] = 50257;
  write_shard(dir.path() / "o.bin", tokens);
  expect_shard_error([&] { read_shard(dir.path() / "o.bin", 50257); }, "o.bin", "token id 50257 at position 613");
  // The same file is fine for a larger vocabulary.
  EXPECT_EQ(read_shard(dir.path() / "o.bin", 50304).size(), 1000u);
}

TEST(Shard, UnreadablePathNamesIt) {
  test::TempDir dir;
  expect_shard_error([&] { MappedShard s(dir.path() / "absent.bin", 50257); }, "absent.bin", "cannot open");
  fs::create_directory(dir.path() / "folder.bin");
  expect_shard_error([&] { MappedShard s(dir.path() / "folder.bin", 50257); }, "folder.bin", "not a regular file");
  expect_shard_error([&] { resolve_shards((dir.path() / "absent.bin").string()); }, "absent.bin", "does not exist");
}

TEST(Shard, EmptyShardSetNamesThePattern) {
  test::TempDir dir;
  write_shard(dir.path() / "corpus_val_000000.bin", std::vector<uint16_t>{1});
  expect_shard_error([&] { resolve_shards((dir.path() / "*_train_*.bin").string()); }, "*_train_*.bin",
                     "no token shards match");
  expect_shard_error([&] { resolve_shards(dir.path().string(), "train"); }, dir.path().string(), "no token shards match");
}

TEST(Shard, ResolvesFoldersByLlmcSplitNamesAndGlobsSorted) {
  test::TempDir dir;
  for (const char* name : {"c_train_000002.bin", "c_train_000001.bin", "c_val_000000.bin", "notes.txt"}) {
    write_shard(dir.path() / name, std::vector<uint16_t>{1});
  }
  const auto train = resolve_shards(dir.path().string(), "train");
  ASSERT_EQ(train.size(), 2u);
  EXPECT_EQ(train[0].filename(), "c_train_000001.bin");
  EXPECT_EQ(train[1].filename(), "c_train_000002.bin");
  const auto val = resolve_shards(dir.path().string(), "val");
  ASSERT_EQ(val.size(), 1u);
  EXPECT_EQ(val[0].filename(), "c_val_000000.bin");
  EXPECT_EQ(resolve_shards(dir.path().string()).size(), 3u);
  EXPECT_EQ(resolve_shards((dir.path() / "c_*_00000[02].bin").string()).size(), 2u);
  EXPECT_EQ(resolve_shards((dir.path() / "c_val_000000.bin").string()).size(), 1u);
}

}  // namespace
}  // namespace ferry::data
