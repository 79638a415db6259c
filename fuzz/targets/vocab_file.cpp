#include "vocab_file.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "gguf/gguf_parser.h"

namespace fuzzing {

VocabFile load_vocab(const std::string& name) {
    const std::string path = std::string(PYLLAMA_TEST_DATA) + "/" + name;
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        std::fprintf(stderr, "cannot open %s\n", path.c_str());
        std::abort();
    }
    const std::vector<uint8_t> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const pyllama::GgufHeader h = pyllama::parse_gguf(data.data(), data.size());
    VocabFile v;
    auto str = [&](std::pair<size_t, size_t> s) { return std::string((const char*)data.data() + s.first, s.second); };
    for (const auto& kv : h.kvs) {
        if (kv.key == "tokenizer.ggml.tokens") {
            for (const auto& s : kv.strings) v.tokens.push_back(str(s));
        } else if (kv.key == "tokenizer.ggml.merges") {
            for (const auto& s : kv.strings) v.merges.push_back(str(s));
        } else if (kv.key == "tokenizer.ggml.pre" && !kv.strings.empty()) {
            v.pre = str(kv.strings[0]);
        } else if (kv.key == "tokenizer.ggml.scores" && kv.elem_type == pyllama::GGUF_FLOAT32) {
            v.scores.resize(kv.count);
            std::memcpy(v.scores.data(), data.data() + kv.offset, kv.count * sizeof(float));
        } else if (kv.key == "tokenizer.ggml.token_type" && kv.elem_type == pyllama::GGUF_INT32) {
            v.types.resize(kv.count);
            std::memcpy(v.types.data(), data.data() + kv.offset, kv.count * sizeof(int32_t));
        }
    }
    if (v.tokens.empty()) {
        std::fprintf(stderr, "%s has no tokens\n", path.c_str());
        std::abort();
    }
    return v;
}

}  // namespace fuzzing
