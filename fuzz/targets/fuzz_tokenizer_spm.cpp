// SentencePiece-style merges on arbitrary text over the test SPM vocabularies
// (llama, phi-3). First input byte: which vocabulary; the rest is the text. Every
// id must be in the vocabulary, and since both hold all 256 <0xXX> byte tokens the
// token texts (byte tokens as their byte) must spell the input exactly.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/spm.h"
#include "vocab_file.h"

namespace {

struct Spm {
    std::unique_ptr<pyllama::SpmTokenizer> tok;
    std::vector<std::string> tokens;
    std::vector<int32_t> byte_of;  // id -> byte for <0xXX> tokens, else -1
};

std::vector<Spm>& vocabs() {
    static std::vector<Spm> v = [] {
        std::vector<Spm> out;
        for (const char* name : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf"}) {
            fuzzing::VocabFile f = fuzzing::load_vocab(std::string("tokenizer-vectors/") + name);
            Spm s;
            s.tokens = f.tokens;
            s.byte_of.assign(f.tokens.size(), -1);
            pyllama::VocabIndex index;
            index.reserve(f.tokens.size(), f.tokens.size() * 8);
            for (size_t i = 0; i < f.tokens.size(); ++i) {
                index.add(f.tokens[i]);
                unsigned b;
                char tail;
                if (f.tokens[i].size() == 6 && std::sscanf(f.tokens[i].c_str(), "<0x%2X%c", &b, &tail) == 2 && tail == '>')
                    s.byte_of[i] = (int32_t)b;
            }
            index.build();
            f.scores.resize(f.tokens.size(), 0.0f);
            s.tok = std::make_unique<pyllama::SpmTokenizer>(std::move(index), f.scores, 0);
            out.push_back(std::move(s));
        }
        return out;
    }();
    return v;
}

}  // namespace

// Load the vocabularies before the first input, so loading is not timed as a unit.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    vocabs();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    auto& vs = vocabs();
    Spm& s = vs[data[0] % vs.size()];
    const std::string text((const char*)data + 1, size - 1);
    std::vector<int32_t> ids;
    s.tok->encode(text, ids);
    std::string back;
    for (int32_t id : ids) {
        if (id < 0 || (size_t)id >= s.tokens.size()) std::abort();
        if (s.byte_of[(size_t)id] >= 0) back += (char)s.byte_of[(size_t)id];
        else back += s.tokens[(size_t)id];
    }
    if (back != text) std::abort();
    return 0;
}
