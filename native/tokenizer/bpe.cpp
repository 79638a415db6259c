#include "bpe.h"

#include <queue>

namespace pyllama {
namespace {

std::string utf8(uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
        s += (char)cp;
    } else if (cp < 0x800) {
        s += (char)(0xC0 | (cp >> 6));
        s += (char)(0x80 | (cp & 0x3F));
    } else {
        s += (char)(0xE0 | (cp >> 12));
        s += (char)(0x80 | ((cp >> 6) & 0x3F));
        s += (char)(0x80 | (cp & 0x3F));
    }
    return s;
}

size_t utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c >> 5) == 6) return 2;
    if ((c >> 4) == 14) return 3;
    if ((c >> 3) == 30) return 4;
    return 1;
}

constexpr size_t kCacheLimit = 200000;

}  // namespace

BpeTokenizer::BpeTokenizer(std::vector<std::string> tokens, const std::vector<std::string>& merges,
                           bool ignore_merges)
    : ignore_merges_(ignore_merges) {
    token_to_id_.reserve(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) token_to_id_.emplace(std::move(tokens[i]), (int32_t)i);
    ranks_.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) ranks_.emplace(merges[i], (int32_t)i);
    // GPT-2's map: printable bytes stand for themselves, the rest for 256 + k in order
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
        const bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        byte_char_[b] = utf8(keep ? (uint32_t)b : (uint32_t)(256 + extra++));
    }
}

void BpeTokenizer::encode(std::string_view text, PreKind kind, std::vector<int32_t>& out) {
    const std::vector<uint32_t> bounds = pretokenize(text, kind);
    std::vector<std::string_view> words;
    words.reserve(bounds.empty() ? 0 : bounds.size() - 1);
    for (size_t k = 0; k + 1 < bounds.size(); ++k) words.push_back(text.substr(bounds[k], bounds[k + 1] - bounds[k]));
    encode_words(words, out);
}

size_t BpeTokenizer::cache_size() const {
    std::lock_guard<std::mutex> lock(cache_mu_);
    return cache_.size();
}

void BpeTokenizer::encode_words(const std::vector<std::string_view>& words, std::vector<int32_t>& out) {
    // The lock is held over a batch of cache hits and let go every kBatch words and
    // around each merge, so another thread never waits long.
    constexpr size_t kBatch = 256;
    std::unique_lock<std::mutex> lock(cache_mu_, std::defer_lock);
    std::string key, encoded;
    std::vector<int32_t> ids;
    for (size_t i = 0; i < words.size(); ++i) {
        if (i % kBatch == 0 && lock.owns_lock()) lock.unlock();
        if (!lock.owns_lock()) lock.lock();
        key.assign(words[i]);
        auto it = cache_.find(key);
        if (it != cache_.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            continue;
        }
        lock.unlock();
        encoded.clear();
        for (unsigned char b : words[i]) encoded += byte_char_[b];
        ids.clear();
        merge_word(encoded, ids);
        out.insert(out.end(), ids.begin(), ids.end());
        lock.lock();
        if (cache_.size() >= kCacheLimit) cache_.clear();
        cache_.emplace(key, ids);
    }
}

void BpeTokenizer::merge_word(const std::string& word, std::vector<int32_t>& out) const {
    if (ignore_merges_) {
        const int32_t id = find(word);
        if (id >= 0) {
            out.push_back(id);
            return;
        }
    }
    // symbols: one UTF-8 character each, as (offset, length) into word, linked
    struct Sym { size_t off, len; int prev, next; };
    std::vector<Sym> sym;
    for (size_t off = 0; off < word.size();) {
        const size_t len = std::min(word.size() - off, utf8_len((unsigned char)word[off]));
        const int idx = (int)sym.size();
        sym.push_back({off, len, idx - 1, off + len == word.size() ? -1 : idx + 1});
        off += len;
    }
    struct Bigram { int rank, left, right; size_t size; };
    auto cmp = [](const Bigram& a, const Bigram& b) { return a.rank > b.rank || (a.rank == b.rank && a.left > b.left); };
    std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
    std::string key;
    auto add = [&](int l, int r) {
        if (l < 0 || r < 0) return;
        key.assign(word, sym[l].off, sym[l].len);
        key += ' ';
        key.append(word, sym[r].off, sym[r].len);
        auto it = ranks_.find(key);
        if (it != ranks_.end()) queue.push({it->second, l, r, sym[l].len + sym[r].len});
    };
    for (int i = 1; i < (int)sym.size(); ++i) add(i - 1, i);
    while (!queue.empty()) {
        const Bigram b = queue.top();
        queue.pop();
        Sym& l = sym[b.left];
        Sym& r = sym[b.right];
        // stale when either side was merged since (symbols only grow, and stay contiguous)
        if (l.len == 0 || r.len == 0 || l.next != b.right || l.len + r.len != b.size) continue;
        l.len += r.len;
        r.len = 0;
        l.next = r.next;
        if (r.next >= 0) sym[r.next].prev = b.left;
        add(l.prev, b.left);
        add(b.left, l.next);
    }
    for (int i = sym.empty() ? -1 : 0; i != -1; i = sym[i].next) {
        const std::string s = word.substr(sym[i].off, sym[i].len);
        const int32_t id = find(s);
        if (id >= 0) {
            out.push_back(id);
            continue;
        }
        for (char c : s) {  // no token: single-byte tokens of its bytes, when they exist
            const int32_t bid = find(std::string(1, c));
            if (bid >= 0) out.push_back(bid);
        }
    }
}

}  // namespace pyllama
