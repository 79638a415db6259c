// Special-token partition of a text, with llama.cpp's semantics: each special token
// in turn (the caller's priority order, longest first) splits every raw fragment
// left by the tokens before it. A byte trie finds, in one pass over the text, which
// special tokens occur at all, so only those few take a splitting pass.
//
// Shared across threads (GIL released): immutable after construction; split() is const.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pyllama {

class SpecialSplitter {
public:
    struct Entry {
        std::string text;
        int32_t id;
        bool lstrip;       // swallow whitespace before the token
        bool rstrip;       // swallow whitespace after it
        bool needs_parse;  // control/unknown: matched only under parse_special
    };
    // A special token (id >= 0), or the raw bytes [start, start + len).
    struct Frag {
        int32_t id;
        uint32_t start, len;
    };

    explicit SpecialSplitter(std::vector<Entry> entries);
    std::vector<Frag> split(std::string_view text, bool parse_special) const;

private:
    std::vector<char> occurring(std::string_view text) const;

    std::vector<Entry> entries_;
    std::unordered_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> child node
    std::vector<int32_t> terminal_;                // node -> entry index, or -1
    bool first_[256] = {};
};

}  // namespace pyllama
