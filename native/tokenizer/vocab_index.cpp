#include "vocab_index.h"

#include <cstring>

namespace pyllama {

void VocabIndex::reserve(size_t n_tokens, size_t n_bytes) {
    offsets_.reserve(n_tokens + 1);
    bytes_.reserve(n_bytes);
}

void VocabIndex::add(std::string_view text) {
    bytes_.append(text);
    offsets_.push_back((uint32_t)bytes_.size());
}

uint64_t VocabIndex::hash(std::string_view s) {
    // FNV-1a over 8-byte words, then a final mix: fast for the short texts of tokens
    uint64_t h = 1469598103934665603ull ^ s.size();
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        uint64_t w;
        std::memcpy(&w, s.data() + i, 8);
        h = (h ^ w) * 1099511628211ull;
    }
    for (; i < s.size(); ++i) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

void VocabIndex::build() {
    const size_t n = size();
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    slots_.assign(cap, -1);
    mask_ = cap - 1;
    for (size_t id = 0; id < n; ++id) {
        const std::string_view t = text((int32_t)id);
        for (uint64_t k = hash(t) & mask_;; k = (k + 1) & mask_) {
            if (slots_[k] < 0) {
                slots_[k] = (int32_t)id;
                break;
            }
            if (text(slots_[k]) == t) {  // a duplicate text: the later id wins
                slots_[k] = (int32_t)id;
                break;
            }
        }
    }
}

int32_t VocabIndex::find(std::string_view t) const {
    if (slots_.empty()) return -1;
    for (uint64_t k = hash(t) & mask_;; k = (k + 1) & mask_) {
        const int32_t id = slots_[k];
        if (id < 0) return -1;
        if (text(id) == t) return id;
    }
}

}  // namespace pyllama
