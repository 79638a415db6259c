// Code points and their category flags, for the native pre-tokenizers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pyllama {

enum CptFlag : uint8_t {
    kLetter = 1, kNumber = 2, kPunct = 4, kSymbol = 8, kMark = 16, kOther = 32, kSeparator = 64, kSpace = 128,
};

// Flags of one code point (binary search over generated ranges).
uint8_t cpt_flags(uint32_t cp);

// UTF-8 -> code points; offsets[i] is the byte offset of code point i (offsets has
// one extra entry, the text size). Invalid bytes decode as U+FFFD, one byte each.
void utf8_decode(std::string_view s, std::vector<uint32_t>& cpts, std::vector<uint32_t>& offsets);

}  // namespace pyllama
