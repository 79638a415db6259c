// GBNF: parse arbitrary text, then drive the matcher with the rest of the input.
// Input: grammar text, a 0 byte, then operations (one byte each, some with a
// payload): accept a token, allows, the full mask (which must agree with allows()
// token by token), accept_text of the next bytes. GrammarError (also
// GrammarTooComplex) ends a run; anything else -- a crash, a sanitizer report, a
// mask that disagrees with allows() -- is a bug.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/matcher.h"

namespace {

// A small vocabulary with the awkward cases: the empty piece (end of generation),
// split UTF-8 characters, continuation bytes, multi-character pieces, a NUL.
const std::vector<std::string> kPieces = {
    "", "a", "b", "c", "ab", "abc", "0", "1", "12", "123", "-", ".", ",", " ", "\n", "\xc3", "\xa9",
    "\xc3\xa9", "yes", "no", "\"", "{", "}", ":", "x", "\xa9x", "[", "]", "\\", "\xe5\x90", "\x8d",
    "\xf0\x9f\x98\x80", std::string("\0", 1), "<tok>", "aaaa", "====", "true", "null", "\t", "\xff"};

// Made per input: its mask cache keeps what a run computed, which would read as a
// leak to libFuzzer's per-input leak check (and make every run scan the heap).
std::shared_ptr<const pyllama::GrammarVocab> vocab() {
    return std::make_shared<const pyllama::GrammarVocab>(kPieces, std::vector<int32_t>{0});
}

int32_t token_id(std::string_view s) {
    if (s == "<tok>") return 33;
    if (s == "<eos>") return 0;
    return -1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const char* p = (const char*)data;
    const void* nul = std::memchr(p, 0, size);
    const size_t glen = nul ? (size_t)((const char*)nul - p) : size;
    pyllama::GrammarLimits lim;  // smaller than the server's, so runs stay fast
    lim.max_source_bytes = 1 << 16;
    lim.max_elements = 1 << 14;
    lim.max_rules = 4096;
    lim.max_repetition = 100;
    std::shared_ptr<pyllama::Grammar> g;
    try {
        g = std::make_shared<pyllama::Grammar>(pyllama::parse_grammar(std::string_view(p, glen), "root", token_id, lim));
    } catch (const pyllama::GrammarError&) {
        return 0;
    }
    const size_t n = kPieces.size();
    try {
        pyllama::GrammarMatcher m(g, vocab(), 200'000);
        for (size_t i = glen + 1; i < size; ++i) {
            const uint8_t op = (uint8_t)data[i];
            switch (op % 4) {
                case 0:
                    m.accept((int32_t)((op / 4) % n));
                    break;
                case 1:
                    m.allows((int32_t)(op / 4) - 2);  // out-of-range ids too
                    break;
                case 2: {
                    const auto bits = m.full_mask();
                    for (size_t t = 0; t < n; ++t)
                        if ((((*bits)[t >> 6] >> (t & 63)) & 1) != (uint64_t)m.allows((int32_t)t)) std::abort();
                    break;
                }
                default: {
                    const size_t k = std::min<size_t>(op / 4 % 8, size - i - 1);
                    m.accept_text(std::string(p + i + 1, k));
                    i += k;
                }
            }
            (void)m.complete();
            (void)m.finished();
        }
    } catch (const pyllama::GrammarError&) {
    }
    return 0;
}
