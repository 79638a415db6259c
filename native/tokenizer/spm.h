// SentencePiece-style BPE over a GGUF vocabulary (tokenizer.ggml.model = llama:
// Llama 2, Phi-3, Gemma). A fragment starts as one symbol per UTF-8 character;
// the adjacent pair whose concatenation is the highest-scoring token merges first
// (ties: leftmost), as llama.cpp's SPM session does. Symbols that are not tokens
// come out as <0xXX> byte tokens.
//
// Shared across threads (request threads and the engine, GIL released): safe by
// construction -- immutable after construction, encode() is const and keeps its
// state on the stack. There is no cache.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "vocab_index.h"

namespace pyllama {

class SpmTokenizer {
public:
    // index: the whole vocabulary; scores by id; unk: the id used for a byte with no
    // <0xXX> token.
    SpmTokenizer(VocabIndex index, std::vector<float> scores, int32_t unk);

    // One raw fragment, spaces already replaced by U+2581.
    void encode(std::string_view text, std::vector<int32_t>& out) const;

    const VocabIndex& index() const { return index_; }

private:
    VocabIndex index_;
    std::vector<float> scores_;
    int32_t byte_ids_[256];
};

}  // namespace pyllama
