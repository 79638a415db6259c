#include "pretokenize.h"

#include "unicode.h"

namespace pyllama {
namespace {

struct Text {
    const uint32_t* c;  // code points
    const uint8_t* f;   // their flags
    size_t n;           // end of the current piece (lookaheads stop here)
    bool L(size_t k) const { return k < n && (f[k] & kLetter); }
    bool N(size_t k) const { return k < n && (f[k] & kNumber); }
    bool S(size_t k) const { return k < n && (f[k] & kSpace); }
    // [^\s\p{L}\p{N}]
    bool O(size_t k) const { return k < n && !(f[k] & (kSpace | kLetter | kNumber)); }
    bool NL(size_t k) const { return k < n && (c[k] == '\r' || c[k] == '\n'); }
};

inline uint32_t ascii_lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// 's|'t|'re|'ve|'m|'ll|'d, optionally case-insensitive: match length or 0.
size_t contraction(const Text& t, size_t i, bool any_case) {
    if (t.c[i] != '\'' || i + 1 >= t.n) return 0;
    auto low = [&](size_t k) { return any_case ? ascii_lower(t.c[k]) : t.c[k]; };
    const uint32_t a = low(i + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 < t.n) {
        const uint32_t b = low(i + 2);
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    return 0;
}

size_t run(const Text& t, size_t k, bool (Text::*pred)(size_t) const) {
    while ((t.*pred)(k)) ++k;
    return k;
}

// \s+(?!\S), then (llama3 only) \s+: match length or 0.
size_t trailing_space(const Text& t, size_t i, bool any_run) {
    const size_t k = run(t, i, &Text::S);
    if (k == i) return 0;
    if (k == t.n) return k - i;
    if (k - i >= 2) return k - i - 1;
    return any_run ? k - i : 0;
}

size_t match_gpt2(const Text& t, size_t i) {
    if (size_t m = contraction(t, i, false)) return m;
    const size_t j = t.c[i] == ' ' ? i + 1 : i;  // " ?" (a bare space never matches the classes below)
    if (t.L(j)) return run(t, j, &Text::L) - i;
    if (t.N(j)) return run(t, j, &Text::N) - i;
    if (t.O(j)) return run(t, j, &Text::O) - i;
    return trailing_space(t, i, false);
}

size_t match_llama3(const Text& t, size_t i, size_t max_digits) {
    if (size_t m = contraction(t, i, true)) return m;
    // [^\r\n\p{L}\p{N}]?\p{L}+
    const size_t j = (!t.NL(i) && !t.L(i) && !t.N(i)) ? i + 1 : i;
    if (t.L(j)) return run(t, j, &Text::L) - i;
    // \p{N}{1,3} (or \p{N})
    if (t.N(i)) {
        size_t k = i;
        while (t.N(k) && k - i < max_digits) ++k;
        return k - i;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    const size_t s = t.c[i] == ' ' ? i + 1 : i;
    if (t.O(s)) return run(t, run(t, s, &Text::O), &Text::NL) - i;
    // \s*[\r\n]+ : up to the last newline of the whitespace run
    if (t.S(i)) {
        size_t k = i, last_nl = 0;
        bool seen = false;
        for (; t.S(k); ++k)
            if (t.NL(k)) { last_nl = k; seen = true; }
        if (seen) return last_nl + 1 - i;
    }
    return trailing_space(t, i, true);
}

// Split [begin, end) by `match` (leftmost first); unmatched stretches are words too.
template <typename Match>
void split(const Text& all, size_t begin, size_t end, std::vector<uint32_t>& cuts, Match match) {
    Text t = all;
    t.n = end;
    size_t i = begin, gap = begin;
    while (i < end) {
        const size_t m = match(t, i);
        if (m == 0) {
            ++i;
            continue;
        }
        if (gap < i) cuts.push_back((uint32_t)i);
        i += m;
        cuts.push_back((uint32_t)i);
        gap = i;
    }
    if (gap < end) cuts.push_back((uint32_t)end);
}

}  // namespace

std::vector<uint32_t> pretokenize(std::string_view text, PreKind kind) {
    std::vector<uint32_t> cpts, offs;
    utf8_decode(text, cpts, offs);
    std::vector<uint8_t> flags(cpts.size());
    for (size_t k = 0; k < cpts.size(); ++k) flags[k] = cpt_flags(cpts[k]);
    const Text t{cpts.data(), flags.data(), cpts.size()};
    std::vector<uint32_t> cuts;  // code point indices where words end
    const size_t n = cpts.size();
    switch (kind) {
        case PreKind::Gpt2:
            split(t, 0, n, cuts, match_gpt2);
            break;
        case PreKind::Starcoder: {
            size_t a = 0;
            for (size_t k = 0; k <= n; ++k) {
                if (k < n && !t.N(k)) continue;
                split(t, a, k, cuts, match_gpt2);
                if (k < n) cuts.push_back((uint32_t)(k + 1));
                a = k + 1;
            }
            break;
        }
        case PreKind::Llama3:
            split(t, 0, n, cuts, [](const Text& x, size_t i) { return match_llama3(x, i, 3); });
            break;
        case PreKind::Qwen2:
            split(t, 0, n, cuts, [](const Text& x, size_t i) { return match_llama3(x, i, 1); });
            break;
    }
    std::vector<uint32_t> bounds;
    bounds.reserve(cuts.size() + 1);
    bounds.push_back(0);
    for (uint32_t c : cuts) bounds.push_back(offs[c]);
    return bounds;
}

}  // namespace pyllama
