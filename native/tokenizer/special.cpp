#include "special.h"

namespace pyllama {
namespace {

bool is_c_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

}  // namespace

SpecialSplitter::SpecialSplitter(std::vector<Entry> entries) : entries_(std::move(entries)) {
    terminal_.push_back(-1);
    for (size_t e = 0; e < entries_.size(); ++e) {
        const std::string& t = entries_[e].text;
        if (t.empty()) continue;
        first_[(unsigned char)t[0]] = true;
        int32_t node = 0;
        for (unsigned char c : t) {
            const uint64_t key = (uint64_t)node << 8 | c;
            auto it = edges_.find(key);
            if (it == edges_.end()) {
                it = edges_.emplace(key, (int32_t)terminal_.size()).first;
                terminal_.push_back(-1);
            }
            node = it->second;
        }
        if (terminal_[node] < 0) terminal_[node] = (int32_t)e;  // the same text twice: first wins
    }
}

std::vector<char> SpecialSplitter::occurring(std::string_view text) const {
    std::vector<char> occ(entries_.size(), 0);
    for (size_t i = 0; i < text.size(); ++i) {
        if (!first_[(unsigned char)text[i]]) continue;
        int32_t node = 0;
        for (size_t j = i; j < text.size(); ++j) {
            auto it = edges_.find((uint64_t)node << 8 | (unsigned char)text[j]);
            if (it == edges_.end()) break;
            node = it->second;
            if (terminal_[node] >= 0) occ[terminal_[node]] = 1;
        }
    }
    return occ;
}

std::vector<SpecialSplitter::Frag> SpecialSplitter::split(std::string_view text, bool parse_special) const {
    std::vector<Frag> frags;
    if (text.empty()) return frags;
    frags.push_back({-1, 0, (uint32_t)text.size()});
    const std::vector<char> occ = occurring(text);
    std::vector<Frag> next;
    for (size_t e = 0; e < entries_.size(); ++e) {
        if (!occ[e]) continue;
        const Entry& en = entries_[e];
        if (en.needs_parse && !parse_special) continue;
        next.clear();
        bool hit = false;
        for (const Frag& f : frags) {
            if (f.id >= 0) {
                next.push_back(f);
                continue;
            }
            const std::string_view s = text.substr(f.start, f.len);
            size_t from = 0;
            bool after_token = false;
            for (;;) {
                const size_t at = s.find(en.text, from);
                size_t b = from, end = at == std::string_view::npos ? s.size() : at;
                if (en.rstrip && after_token)
                    while (b < end && is_c_space(s[b])) ++b;
                if (en.lstrip && at != std::string_view::npos)
                    while (end > b && is_c_space(s[end - 1])) --end;
                if (end > b) next.push_back({-1, f.start + (uint32_t)b, (uint32_t)(end - b)});
                if (at == std::string_view::npos) break;
                next.push_back({en.id, 0, 0});
                hit = true;
                after_token = true;
                from = at + en.text.size();
            }
        }
        if (hit) frags.swap(next);
    }
    return frags;
}

}  // namespace pyllama
