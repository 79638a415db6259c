// Code points and their category flags, for the native pre-tokenizers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pyllama {

enum CptFlag : uint8_t {
    kLetter = 1, kNumber = 2, kPunct = 4, kSymbol = 8, kMark = 16, kOther = 32, kSeparator = 64, kSpace = 128,
};

// Bytes of the UTF-8 sequence a lead byte starts, by its high nibble (llama.cpp's
// unicode_len_utf8: continuation bytes count as 1, 0xF8-0xFF as 4).
inline size_t utf8_len(unsigned char lead) {
    static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[lead >> 4];
}

// Flags of one code point (binary search over generated ranges).
uint8_t cpt_flags(uint32_t cp);

// UTF-8 -> code points; offsets[i] is the byte offset of code point i (offsets has
// one extra entry, the text size). Invalid bytes decode as U+FFFD, one byte each.
void utf8_decode(std::string_view s, std::vector<uint32_t>& cpts, std::vector<uint32_t>& offsets);

}  // namespace pyllama
