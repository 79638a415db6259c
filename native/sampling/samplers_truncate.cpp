// Samplers that cut the candidate list: top-k, top-p, min-p, typical-p,
// top-n-sigma, XTC.
#include <cfloat>
#include <cmath>
#include <numeric>

#include "samplers.h"

namespace pyllama {

void TopK::apply(Candidates& c) {
    if (k_ <= 0) return;
    keep_top(c, (size_t)k_);
}

void TopP::apply(Candidates& c) {
    if (p_ >= 1.0f || c.size == 0) return;
    softmax(c, false);
    // unsorted: sort only a head of 256 first (large vocabularies), widening if needed
    std::vector<TokenData> head;
    const TokenData* pd = c.data;
    size_t k = c.size;
    if (!c.sorted) {
        k = c.size > 1024 ? std::min<size_t>(256, c.size) : c.size;
        top_into(c, k, head);
        pd = head.data();
    }
    float cum = 0.0f;
    size_t last = c.size;
    for (size_t i = 0; i < c.size; ++i) {
        cum += pd[i].p;
        if (cum >= p_ && i + 1 >= min_keep_) {
            last = i + 1;
            break;
        }
        if (!c.sorted && i == k - 1 && k < c.size) {
            k = c.size;
            top_into(c, k, head);
            pd = head.data();
        }
    }
    if (!c.sorted) {
        std::copy(head.begin(), head.begin() + (ptrdiff_t)last, c.data);
        c.sorted = true;
    }
    c.size = last;
}

void MinP::apply(Candidates& c) {
    if (p_ <= 0.0f || c.size == 0) return;
    if (!c.sorted) {
        // keep the vocabulary order: filter by logit >= max + log(p)
        float max_l = -FLT_MAX;
        for (size_t i = 0; i < c.size; ++i) max_l = std::max(max_l, c.data[i].logit);
        const float min_l = max_l + std::log(p_);
        size_t n = 0;
        for (size_t i = 0; i < c.size; ++i)
            if (c.data[i].logit >= min_l) ++n;
        if (n > 0 && n >= min_keep_) {
            size_t o = 0;
            for (size_t i = 0; i < c.size; ++i)
                if (c.data[i].logit >= min_l) c.data[o++] = c.data[i];
            c.size = n;
            return;
        }
        keep_top(c, c.size);
    }
    const float min_l = c.data[0].logit + std::log(p_);
    size_t i = 1;  // the first token always stays
    for (; i < c.size; ++i)
        if (c.data[i].logit < min_l && i >= min_keep_) break;
    c.size = i;
}

void TypicalP::apply(Candidates& c) {
    if (p_ >= 1.0f || c.size == 0) return;
    softmax(c, true);
    float entropy = 0.0f;
    for (size_t i = 0; i < c.size; ++i) entropy += -c.data[i].p * std::log(c.data[i].p);
    // distance of each token's surprise from the entropy; the closest come first
    std::vector<float> shifted(c.size);
    for (size_t i = 0; i < c.size; ++i) shifted[i] = std::fabs(-std::log(c.data[i].p) - entropy);
    std::vector<size_t> order(c.size);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return shifted[a] < shifted[b]; });
    float cum = 0.0f;
    size_t last = order.size();
    for (size_t i = 0; i < order.size(); ++i) {
        cum += c.data[order[i]].p;
        if (cum > p_ && (min_keep_ == 0 || i >= min_keep_ - 1)) {
            last = i + 1;
            break;
        }
    }
    std::vector<TokenData> kept(last);
    for (size_t i = 0; i < last; ++i) kept[i] = c.data[order[i]];
    std::copy(kept.begin(), kept.end(), c.data);
    c.size = last;
    c.sorted = false;
}

void TopNSigma::apply(Candidates& c) {
    if (n_ <= 0.0f || c.size <= 1) return;
    float max_l = c.data[0].logit, sum = 0.0f;
    size_t valid = 0;
    for (size_t i = 0; i < c.size; ++i) {
        if (c.data[i].logit == -INFINITY) continue;
        max_l = std::max(max_l, c.data[i].logit);
        sum += c.data[i].logit;
        ++valid;
    }
    const float mean = valid > 0 ? sum / (float)valid : 0.0f;
    float acc = 0.0f;
    for (size_t i = 0; i < c.size; ++i)
        if (c.data[i].logit != -INFINITY) acc += std::pow(c.data[i].logit - mean, 2);
    const float sd = valid > 0 ? std::sqrt(acc / (float)valid) : 0.0f;
    for (size_t i = 0; i < c.size; ++i)
        if (c.data[i].logit < max_l - n_ * sd) c.data[i].logit = -INFINITY;
}

void Xtc::apply(Candidates& c) {
    if (probability_ <= 0.0f || threshold_ > 0.5f || c.size < 2) return;
    std::uniform_real_distribution<float> chance(0.0f, 1.0f);
    if (chance(rng_) > probability_) return;
    softmax(c, true);
    size_t last_above = 0;
    for (size_t i = 0; i < c.size; ++i) {
        if (c.data[i].p < threshold_) break;
        last_above = i;
    }
    if (c.size - last_above >= min_keep_ && last_above > 0) {
        c.data += last_above;
        c.size -= last_above;
    }
}

}  // namespace pyllama
