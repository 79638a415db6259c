#include "unicode.h"

#include <algorithm>

namespace pyllama {
namespace {

struct Range { uint32_t first; uint8_t flags; };
const Range kRanges[] = {
#include "unicode_flags.inc"
};

}  // namespace

uint8_t cpt_flags(uint32_t cp) {
    if (cp < 0x80) {  // ASCII fast path through the same table
        static const auto ascii = [] {
            std::vector<uint8_t> t(0x80);
            for (uint32_t c = 0; c < 0x80; ++c) {
                const Range* r = std::upper_bound(std::begin(kRanges), std::end(kRanges), c,
                                                  [](uint32_t v, const Range& x) { return v < x.first; }) - 1;
                t[c] = r->flags;
            }
            return t;
        }();
        return ascii[cp];
    }
    const Range* r = std::upper_bound(std::begin(kRanges), std::end(kRanges), cp,
                                      [](uint32_t v, const Range& x) { return v < x.first; }) - 1;
    return r->flags;
}

void utf8_decode(std::string_view s, std::vector<uint32_t>& cpts, std::vector<uint32_t>& offsets) {
    cpts.clear();
    offsets.clear();
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        offsets.push_back((uint32_t)i);
        const unsigned char c = p[i];
        uint32_t cp = 0xFFFD;
        size_t len = 1;
        if (c < 0x80) {
            cp = c;
        } else if ((c >> 5) == 6 && i + 1 < n && (p[i + 1] & 0xC0) == 0x80) {
            cp = ((c & 0x1F) << 6) | (p[i + 1] & 0x3F);
            len = 2;
        } else if ((c >> 4) == 14 && i + 2 < n && (p[i + 1] & 0xC0) == 0x80 && (p[i + 2] & 0xC0) == 0x80) {
            cp = ((c & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F);
            len = 3;
        } else if ((c >> 3) == 30 && i + 3 < n && (p[i + 1] & 0xC0) == 0x80 && (p[i + 2] & 0xC0) == 0x80 &&
                   (p[i + 3] & 0xC0) == 0x80) {
            cp = ((c & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) | ((p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F);
            len = 4;
        }
        cpts.push_back(cp);
        i += len;
    }
    offsets.push_back((uint32_t)n);
}

}  // namespace pyllama
