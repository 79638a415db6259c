// Native pre-tokenizers for the common BPE pattern families, written out by hand
// with the same leftmost-first semantics as the regular expressions they stand for
// (pyllama/tokenizer_pretok.py holds the patterns).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace pyllama {

enum class PreKind : int {
    Gpt2 = 0,       // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
    Starcoder = 1,  // \p{N} first, then Gpt2
    Llama3 = 2,     // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    Qwen2 = 3,      // Llama3 with \p{N} (single digits)
};

// Word boundaries of text as byte offsets: word k is [bounds[k], bounds[k+1]).
std::vector<uint32_t> pretokenize(std::string_view text, PreKind kind);

}  // namespace pyllama
