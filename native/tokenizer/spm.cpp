#include "spm.h"

#include <cstdio>
#include <queue>

#include "unicode.h"

namespace pyllama {
namespace {

struct Symbol {
    int32_t prev, next;
    uint32_t start, len;  // len 0: merged into its left neighbour
};

struct Bigram {
    float score;
    int32_t left, right;
    uint32_t size;
};

struct BigramOrder {
    bool operator()(const Bigram& a, const Bigram& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

}  // namespace

SpmTokenizer::SpmTokenizer(VocabIndex index, std::vector<float> scores, int32_t unk)
    : index_(std::move(index)), scores_(std::move(scores)) {
    char name[8];
    for (int b = 0; b < 256; ++b) {
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        int32_t id = index_.find(name);
        if (id < 0) id = index_.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
        byte_ids_[b] = id < 0 ? unk : id;
    }
}

void SpmTokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
    std::vector<Symbol> sym;
    sym.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
        const size_t n = std::min(utf8_len((unsigned char)text[i]), text.size() - i);
        sym.push_back({(int32_t)sym.size() - 1, (int32_t)sym.size() + 1, (uint32_t)i, (uint32_t)n});
        i += n;
    }
    if (sym.empty()) return;
    sym.back().next = -1;

    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    auto try_add = [&](int32_t left, int32_t right) {
        if (left < 0 || right < 0) return;
        const uint32_t size = sym[left].len + sym[right].len;
        const int32_t id = index_.find(text.substr(sym[left].start, size));
        if (id >= 0) queue.push({scores_[id], left, right, size});
    };
    for (int32_t i = 1; i < (int32_t)sym.size(); ++i) try_add(i - 1, i);
    while (!queue.empty()) {
        const Bigram b = queue.top();
        queue.pop();
        Symbol& l = sym[b.left];
        Symbol& r = sym[b.right];
        if (l.len == 0 || r.len == 0 || l.len + r.len != b.size) continue;  // stale
        l.len += r.len;
        r.len = 0;
        l.next = r.next;
        if (r.next >= 0) sym[r.next].prev = b.left;
        try_add(l.prev, b.left);
        try_add(b.left, l.next);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next) {
        const std::string_view s = text.substr(sym[i].start, sym[i].len);
        const int32_t id = index_.find(s);
        if (id >= 0) {
            out.push_back(id);
        } else {
            for (unsigned char c : s) out.push_back(byte_ids_[c]);
        }
    }
}

}  // namespace pyllama
