// Byte-level BPE (GPT-2 style vocabularies): words are byte-encoded to GPT-2's
// printable characters, then merged lowest rank first (ties: leftmost), one pair
// at a time as llama.cpp's BPE session does. Results are cached per word.
#pragma once

#include <cstdint>
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
    void encode_word(std::string_view word, std::vector<int32_t>& out);

    size_t cache_size() const { return cache_.size(); }

private:
    void merge_word(const std::string& encoded, std::vector<int32_t>& out) const;
    int32_t find(const std::string& s) const {
        auto it = token_to_id_.find(s);
        return it == token_to_id_.end() ? -1 : it->second;
    }

    std::unordered_map<std::string, int32_t> token_to_id_;
    std::unordered_map<std::string, int32_t> ranks_;  // "left right" -> rank
    std::unordered_map<std::string, std::vector<int32_t>> cache_;
    std::string byte_char_[256];  // byte -> UTF-8 of its printable stand-in
    bool ignore_merges_;
};

}  // namespace pyllama
