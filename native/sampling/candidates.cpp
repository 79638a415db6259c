#include "candidates.h"

#include <algorithm>
#include <cmath>

namespace pyllama {
namespace {

bool by_logit(const TokenData& a, const TokenData& b) { return a.logit > b.logit; }

// The k highest of [first, last) into out, descending. Small k: a heap pass. Large
// k: a 128-bucket histogram over [-10, 10] finds the buckets holding the top k, so
// only those are gathered and sorted.
void select_top(const TokenData* first, const TokenData* last, size_t k, std::vector<TokenData>& out) {
    const size_t n = (size_t)(last - first);
    k = std::min(k, n);
    if (k <= 128) {
        out.assign(first, last);
        std::partial_sort(out.begin(), out.begin() + (ptrdiff_t)k, out.end(), by_logit);
        out.resize(k);
        return;
    }
    constexpr int kBuckets = 128;
    constexpr float kLow = -10.0f, kHigh = 10.0f;
    constexpr float kScale = kBuckets / (kHigh - kLow);
    std::vector<uint8_t> bucket(n);
    int histo[kBuckets] = {};
    for (size_t i = 0; i < n; ++i) {
        int b = (int)(kScale * (first[i].logit - kLow));
        b = std::max(0, std::min(kBuckets - 1, b));
        bucket[i] = (uint8_t)b;
        ++histo[b];
    }
    int lowest = kBuckets - 1;
    size_t have = 0;
    for (; lowest >= 0; --lowest) {
        have += (size_t)histo[lowest];
        if (have >= k) break;
    }
    lowest = std::max(lowest, 0);
    // gather the needed buckets, highest first; sort the full ones, partially the last
    size_t start[kBuckets];
    size_t at = 0;
    for (int b = kBuckets - 1; b >= lowest; --b) {
        start[b] = at;
        at += (size_t)histo[b];
    }
    out.resize(have);
    size_t fill[kBuckets];
    for (int b = lowest; b < kBuckets; ++b) fill[b] = start[b];
    for (size_t i = 0; i < n; ++i)
        if (bucket[i] >= lowest) out[fill[bucket[i]]++] = first[i];
    size_t done = 0;
    for (int b = kBuckets - 1; b > lowest; --b) {
        std::sort(out.begin() + (ptrdiff_t)start[b], out.begin() + (ptrdiff_t)(start[b] + histo[b]), by_logit);
        done += (size_t)histo[b];
    }
    auto last_first = out.begin() + (ptrdiff_t)start[lowest];
    std::partial_sort(last_first, last_first + (ptrdiff_t)(k - done), last_first + histo[lowest], by_logit);
    out.resize(k);
}

}  // namespace

void Candidates::reset(const float* logits, int32_t n_vocab) {
    buf.resize((size_t)n_vocab);
    for (int32_t i = 0; i < n_vocab; ++i) buf[(size_t)i] = {i, logits[i], 0.0f};
    data = buf.data();
    size = buf.size();
    sorted = false;
    selected = -1;
}

void keep_top(Candidates& c, size_t k) {
    k = std::min(k, c.size);
    if (c.sorted) {
        c.size = k;
        return;
    }
    if (k <= 128) {  // a heap pass in place
        std::partial_sort(c.data, c.data + k, c.data + c.size, by_logit);
        c.size = k;
        c.sorted = true;
        return;
    }
    std::vector<TokenData> top;
    select_top(c.data, c.data + c.size, k, top);
    std::copy(top.begin(), top.end(), c.data);
    c.size = k;
    c.sorted = true;
}

void top_into(const Candidates& c, size_t k, std::vector<TokenData>& out) {
    if (c.sorted) {
        out.assign(c.data, c.data + std::min(k, c.size));
        return;
    }
    select_top(c.data, c.data + c.size, k, out);
}

float max_logit(const Candidates& c) {
    float max_l = c.data[0].logit;
    if (!c.sorted)
        for (size_t i = 1; i < c.size; ++i) max_l = std::max(max_l, c.data[i].logit);
    return max_l;
}

void softmax(Candidates& c, bool do_sort) {
    if (c.size == 0) return;
    if (do_sort && !c.sorted) keep_top(c, c.size);
    const float max_l = max_logit(c);
    float sum = 0.0f;
    for (size_t i = 0; i < c.size; ++i) {
        const float p = std::exp(c.data[i].logit - max_l);
        c.data[i].p = p;
        sum += p;
    }
    for (size_t i = 0; i < c.size; ++i) c.data[i].p /= sum;
}

void apply_temperature(Candidates& c, float t) {
    if (c.size == 0) return;
    if (t <= 0.0f) {
        size_t best = 0;
        for (size_t i = 1; i < c.size; ++i) {
            if (c.data[i].logit > c.data[best].logit) {
                c.data[best].logit = -INFINITY;
                best = i;
            } else {
                c.data[i].logit = -INFINITY;
            }
        }
        return;
    }
    for (size_t i = 0; i < c.size; ++i) c.data[i].logit /= t;
}

}  // namespace pyllama
