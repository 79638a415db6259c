// A vocabulary read from one of the test GGUF files (tests/data), for the fuzz
// targets: token texts, scores, merges and special-token entries, loaded once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fuzzing {

struct VocabFile {
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;  // llama.cpp token types: 1 normal, 3 control, 4 user defined, 6 byte
    std::vector<std::string> merges;
    std::string pre;  // tokenizer.ggml.pre
};

// name: a file under tests/data, e.g. "tokenizer-vectors/ggml-vocab-gpt-2.gguf". Aborts when missing.
VocabFile load_vocab(const std::string& name);

}  // namespace fuzzing
