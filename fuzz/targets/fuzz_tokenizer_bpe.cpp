// Byte-level BPE (with the native pre-tokenizers and the special-token splitter)
// on arbitrary text over the test vocabularies. First input byte: which vocabulary,
// pre-tokenizer and parse_special; the rest is the text. Every id must be in the
// vocabulary, and for vocabularies holding all 256 byte tokens the token texts
// must decode back to the input exactly.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/special.h"
#include "vocab_file.h"

namespace {

struct Bpe {
    std::unique_ptr<pyllama::BpeTokenizer> tok;
    std::unique_ptr<pyllama::SpecialSplitter> special;
    std::vector<std::string> tokens;
    bool round_trips = false;
};

// GPT-2's byte <-> printable character map (the inverse of BpeTokenizer's).
std::string byte_char(int b, int& extra) {
    const bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const uint32_t cp = keep ? (uint32_t)b : (uint32_t)(256 + extra++);
    std::string s;
    if (cp < 0x80) {
        s += (char)cp;
    } else {
        s += (char)(0xC0 | (cp >> 6));
        s += (char)(0x80 | (cp & 0x3F));
    }
    return s;
}

std::vector<Bpe>& vocabs() {
    static std::vector<Bpe> v = [] {
        std::vector<Bpe> out;
        for (const char* name : {"ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-bpe.gguf", "ggml-vocab-qwen2.gguf",
                                 "ggml-vocab-starcoder.gguf", "ggml-vocab-deepseek-coder.gguf"}) {
            fuzzing::VocabFile f = fuzzing::load_vocab(std::string("tokenizer-vectors/") + name);
            Bpe b;
            b.tokens = f.tokens;
            std::vector<pyllama::SpecialSplitter::Entry> entries;
            for (size_t i = 0; i < f.tokens.size() && i < f.types.size(); ++i)
                if (f.types[i] == 3 || f.types[i] == 4)
                    entries.push_back({f.tokens[i], (int32_t)i, false, false, f.types[i] == 3});
            b.special = std::make_unique<pyllama::SpecialSplitter>(std::move(entries));
            b.tok = std::make_unique<pyllama::BpeTokenizer>(std::move(f.tokens), f.merges, false);
            out.push_back(std::move(b));
        }
        return out;
    }();
    return v;
}

// byte-level text of a token -> raw bytes; false when a character is not a byte stand-in
bool decode(const std::string& t, std::string& out) {
    static const std::vector<int> inverse = [] {
        std::vector<int> inv(512, -1);
        int extra = 0;
        for (int b = 0; b < 256; ++b) {
            const std::string s = byte_char(b, extra);
            const uint32_t cp = s.size() == 1 ? (unsigned char)s[0]
                                              : (((unsigned char)s[0] & 0x1F) << 6) | ((unsigned char)s[1] & 0x3F);
            inv[cp] = b;
        }
        return inv;
    }();
    for (size_t i = 0; i < t.size();) {
        const unsigned char c = (unsigned char)t[i];
        uint32_t cp;
        if (c < 0x80) {
            cp = c;
            i += 1;
        } else if ((c >> 5) == 6 && i + 1 < t.size()) {
            cp = ((c & 0x1F) << 6) | ((unsigned char)t[i + 1] & 0x3F);
            i += 2;
        } else {
            return false;
        }
        if (cp >= inverse.size() || inverse[cp] < 0) return false;
        out += (char)inverse[cp];
    }
    return true;
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
    Bpe& b = vs[data[0] % vs.size()];
    const auto kind = static_cast<pyllama::PreKind>((data[0] / vs.size()) % 4);
    const bool parse_special = (data[0] / vs.size() / 4) & 1;
    const std::string text((const char*)data + 1, size - 1);
    std::vector<int32_t> ids;
    for (const auto& f : b.special->split(text, parse_special)) {
        if (f.id >= 0) {
            ids.push_back(f.id);
            continue;
        }
        if (f.start > text.size() || f.len > text.size() - f.start) std::abort();
        b.tok->encode(std::string_view(text).substr(f.start, f.len), kind, ids);
    }
    std::string back;
    bool decodable = true;
    for (int32_t id : ids) {
        if (id < 0 || (size_t)id >= b.tokens.size()) std::abort();
        if (decodable && !parse_special) decodable = decode(b.tokens[(size_t)id], back);
    }
    // gpt-2 holds every byte's token: its ids spell the input exactly
    if (&b == &vs[0] && !parse_special && decodable && back != text) std::abort();
    return 0;
}
