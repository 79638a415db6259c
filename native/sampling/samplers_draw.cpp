// Temperature (plain and dynamic), the final draw, and mirostat.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "samplers.h"

namespace pyllama {

uint32_t resolve_seed(uint32_t seed) {
    if (seed != kRandomSeed) return seed;
    std::random_device rd;
    if (rd.entropy() == 0)  // not a true source: fall back to the clock
        return (uint32_t)std::chrono::system_clock::now().time_since_epoch().count();
    return rd();
}

namespace {

// A draw proportional to the probabilities (std::discrete_distribution, as
// llama.cpp's mirostat draws).
size_t draw_discrete(const Candidates& c, std::mt19937& rng) {
    std::vector<double> w(c.size);
    for (size_t i = 0; i < c.size; ++i) w[i] = c.data[i].p;
    std::discrete_distribution<int> dist(w.begin(), w.end());
    return (size_t)dist(rng);
}

}  // namespace

void Temperature::apply(Candidates& c) {
    if (range_ <= 0.0f) {
        apply_temperature(c, t_);
        return;
    }
    if (c.size <= 1) return;
    const float lo = std::max(0.0f, t_ - range_), hi = t_ + range_;
    const float max_entropy = -std::log(1.0f / (float)c.size);
    softmax(c, true);
    float entropy = 0.0f;
    for (size_t i = 0; i < c.size; ++i)
        if (c.data[i].p > 0.0f) entropy -= c.data[i].p * std::log(c.data[i].p);
    const float t = lo + (hi - lo) * std::pow(entropy / max_entropy, exponent_);
    apply_temperature(c, t);
    // probabilities again, in double, after the rescale
    const double max_l = c.data[0].logit;
    double sum = 0.0;
    for (size_t i = 0; i < c.size; ++i) {
        const double p = std::exp(c.data[i].logit - max_l);
        c.data[i].p = (float)p;
        sum += p;
    }
    for (size_t i = 0; i < c.size; ++i) c.data[i].p = (float)(c.data[i].p / sum);
}

void Dist::apply(Candidates& c) {
    if (c.size == 0) {
        c.selected = -1;
        return;
    }
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    c.selected = 0;
    if (c.size == 1) {
        (void)uniform(rng_);  // one draw per token, whatever is left
        c.data[0].p = 1.0f;
        return;
    }
    const float max_l = max_logit(c);
    double sum = 0.0;  // in double, as llama.cpp's draw sums
    for (size_t i = 0; i < c.size; ++i) {
        const float p = std::exp(c.data[i].logit - max_l);
        c.data[i].p = p;
        sum += p;
    }
    // walk the cumulative sum to the drawn fraction, normalising on the way
    const double target = sum * uniform(rng_);
    double run = 0.0;
    bool found = false;
    for (size_t i = 0; i < c.size; ++i) {
        if (!found) {
            run += c.data[i].p;
            if (run >= target) {
                c.selected = (int64_t)i;
                found = true;
            }
        }
        c.data[i].p = (float)(c.data[i].p / sum);
    }
    if (!found) c.selected = (int64_t)c.size - 1;
}

void AdaptiveP::reset() {
    weighted_sum_ = target_ / (1.0f - decay_);
    total_weight_ = 1.0f / (1.0f - decay_);
    pending_id_ = -1;
    pending_idx_ = -1;
    rng_.seed(resolve_seed(seed_));
}

void AdaptiveP::apply(Candidates& c) {
    if (c.size == 0) {
        c.selected = -1;
        return;
    }
    softmax(c, false);
    if (target_ < 0.0f) {
        c.selected = (int64_t)draw_discrete(c, rng_);
        return;
    }
    original_.resize(c.size);
    for (size_t i = 0; i < c.size; ++i) original_[i] = c.data[i].p;
    const float target = std::min(1.0f, std::max(0.0f, target_));
    float adapted = total_weight_ == 0.0f ? target : 2.0f * target - weighted_sum_ / total_weight_;
    adapted = std::min(1.0f, std::max(0.0f, adapted));
    // quadratic near the target, linear in the tails: far tokens are suppressed after the softmax
    constexpr float kInvWidth = 1.0f / 0.3f, kPeak = 5.0f, kSharpness = 10.0f;
    for (size_t i = 0; i < c.size; ++i) {
        if (c.data[i].logit == -INFINITY) continue;
        const float dist = std::fabs((c.data[i].p - adapted) * kInvWidth);
        c.data[i].logit = kPeak - kSharpness * dist * dist / (1.0f + dist);
    }
    softmax(c, false);
    const size_t idx = draw_discrete(c, rng_);
    c.selected = (int64_t)idx;
    pending_id_ = c.data[idx].id;
    pending_idx_ = (int64_t)idx;
}

void AdaptiveP::accept(int32_t token) {
    if (pending_id_ >= 0 && pending_id_ == token) {
        weighted_sum_ = original_[(size_t)pending_idx_] + decay_ * weighted_sum_;
        total_weight_ = 1.0f + decay_ * total_weight_;
    }
    pending_id_ = -1;
    pending_idx_ = -1;
}

void Mirostat::apply(Candidates& c) {
    softmax(c, true);
    if (version_ == 1) {
        // estimate the Zipf exponent s from the 100 most likely tokens
        const size_t m = 100;
        float sum_tb = 0.0f, sum_tt = 0.0f;
        for (size_t i = 0; i + 1 < m && i + 1 < c.size; ++i) {
            const float t = std::log((float)(i + 2) / (float)(i + 1));
            const float b = std::log(c.data[i].p / c.data[i + 1].p);
            sum_tb += t * b;
            sum_tt += t * t;
        }
        const float s = sum_tb / sum_tt;
        const float eps = s - 1;
        const float k = std::pow((eps * std::pow(2.0f, mu_)) / (1 - std::pow((float)n_vocab_, -eps)), 1 / s);
        // k may come out NaN or infinite on degenerate distributions
        size_t keep = 1;
        if (k >= (float)c.size) keep = c.size;
        else if (k >= 1.0f) keep = (size_t)k;
        keep_top(c, keep);
    } else {
        // drop the tokens whose surprise exceeds mu
        size_t n = 0;
        while (n < c.size && !(-std::log2(c.data[n].p) > mu_)) ++n;
        c.size = std::max<size_t>(n, 1);
    }
    softmax(c, true);
    const size_t idx = draw_discrete(c, rng_);
    c.selected = (int64_t)idx;
    const float surprise = -std::log2(c.data[idx].p);
    mu_ -= eta_ * (surprise - tau_);
}

}  // namespace pyllama
