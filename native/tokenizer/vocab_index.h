// Text -> token id over a whole vocabulary, built fast: every token's UTF-8 bytes
// go into one buffer and an open-addressing table of ids points into it. A text
// held by several ids maps to the last of them (as llama.cpp's token_to_id map).
// Built once, then read-only: safe to share across threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pyllama {

class VocabIndex {
public:
    VocabIndex() = default;
    // Tokens arrive one at a time, in id order.
    void reserve(size_t n_tokens, size_t n_bytes);
    void add(std::string_view text);
    void build();

    int32_t find(std::string_view text) const;
    std::string_view text(int32_t id) const {
        return std::string_view(bytes_.data() + offsets_[id], offsets_[id + 1] - offsets_[id]);
    }
    size_t size() const { return offsets_.size() - 1; }

private:
    static uint64_t hash(std::string_view s);

    std::string bytes_;
    std::vector<uint32_t> offsets_{0};
    std::vector<int32_t> slots_;  // -1: empty
    uint64_t mask_ = 0;
};

}  // namespace pyllama
