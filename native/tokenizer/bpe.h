// Byte-level BPE (GPT-2 style vocabularies): words are byte-encoded to GPT-2's
// printable characters, then merged lowest rank first (ties: leftmost), one pair
// at a time as llama.cpp's BPE session does. Results are cached per word.
//
// Shared across threads: one tokenizer serves the request threads (/tokenize,
// prompts) and the engine thread (DRY breakers) at once, with the GIL released.
// The vocabulary and merge tables are immutable after construction; the word
// cache is the only mutable state and is guarded by cache_mu_, taken once per
// batch of words (not per word) so that a warm cache stays as fast as before.
// Merging runs outside the lock.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pretokenize.h"

namespace pyllama {

class BpeTokenizer {
public:
    // tokens: vocabulary texts by id; merges: "left right" strings by rank.
    BpeTokenizer(std::vector<std::string> tokens, const std::vector<std::string>& merges, bool ignore_merges);

    // One raw fragment (no special tokens): pre-tokenize natively, then merge.
    void encode(std::string_view text, PreKind kind, std::vector<int32_t>& out);
    // Words already split (by a pre-tokenizer with no native version).
    void encode_words(const std::vector<std::string_view>& words, std::vector<int32_t>& out);
    void encode_word(std::string_view word, std::vector<int32_t>& out) { encode_words({word}, out); }

    size_t cache_size() const;

private:
    void merge_word(const std::string& encoded, std::vector<int32_t>& out) const;
    int32_t find(const std::string& s) const {
        auto it = token_to_id_.find(s);
        return it == token_to_id_.end() ? -1 : it->second;
    }

    std::unordered_map<std::string, int32_t> token_to_id_;
    std::unordered_map<std::string, int32_t> ranks_;  // "left right" -> rank
    mutable std::mutex cache_mu_;
    std::unordered_map<std::string, std::vector<int32_t>> cache_;  // guarded by cache_mu_
    std::string byte_char_[256];  // byte -> UTF-8 of its printable stand-in
    bool ignore_merges_;
};

}  // namespace pyllama
