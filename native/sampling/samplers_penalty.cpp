// Samplers that adjust logits: logit bias, repetition penalties, DRY.
#include <cmath>

#include "samplers.h"

namespace pyllama {

int32_t TokenWindow::push(int32_t token) {
    int32_t out = -1;
    if (capacity_ == 0) return token;
    if (tokens_.size() == capacity_) {
        out = tokens_.front();
        tokens_.pop_front();
    }
    tokens_.push_back(token);
    return out;
}

void LogitBias::apply(Candidates& c) {
    std::vector<const std::pair<int32_t, float>*> missing;
    for (const auto& b : biases_) {
        // the list still in vocabulary order: index = id
        if (b.first >= 0 && (size_t)b.first < c.size && c.data[b.first].id == b.first)
            c.data[b.first].logit += b.second;
        else
            missing.push_back(&b);
    }
    if (missing.empty()) return;
    for (size_t i = 0; i < c.size; ++i)
        for (const auto* b : missing)
            if (c.data[i].id == b->first) {
                c.data[i].logit += b->second;
                break;
            }
}

void Penalties::accept(int32_t token) {
    if (last_n_ == 0) return;
    ++counts_[token];
    const int32_t old = window_.push(token);
    if (old >= 0) {
        auto it = counts_.find(old);
        if (--it->second == 0) counts_.erase(it);
    }
}

void Penalties::reset() {
    window_.clear();
    counts_.clear();
}

void Penalties::apply(Candidates& c) {
    if (disabled() || counts_.empty()) return;
    auto penalise = [&](float& l, int count) {
        // multiply a non-positive logit, divide a positive one: both make it less likely
        l = l <= 0 ? l * repeat_ : l / repeat_;
        l -= (float)count * freq_ + (float)(count > 0) * present_;
    };
    bool missing = false;
    for (const auto& [token, count] : counts_) {
        if ((size_t)token < c.size && c.data[token].id == token)  // still in vocabulary order
            penalise(c.data[token].logit, count);
        else
            missing = true;
    }
    if (missing) {  // a reordered list: look each candidate up
        for (size_t i = 0; i < c.size; ++i) {
            const int32_t id = c.data[i].id;
            if ((size_t)id < c.size && c.data[id].id == id) continue;  // done above
            const auto it = counts_.find(id);
            if (it != counts_.end()) penalise(c.data[i].logit, it->second);
        }
    }
    c.sorted = false;
}

void Dry::accept(int32_t token) {
    if (enabled()) window_.push(token);
}

// How far back a repetition may reach: up to the most recent sequence breaker
// (its head token preceded in the text by its tail tokens), else the whole window.
int Dry::repetition_limit(int n) const {
    for (int i = 0; i < n; ++i) {
        const auto range = breakers_.equal_range(window_.recent((size_t)i));
        int longest = -1;
        for (auto it = range.first; it != range.second; ++it) {
            const int len = (int)it->second.size();
            if (len <= longest || len > i) continue;
            bool match = true;
            for (int o = 0; o < len && match; ++o) match = it->second[(size_t)o] == window_.recent((size_t)(i - o - 1));
            if (match) longest = len;
        }
        if (longest >= 0) return i - longest;
    }
    return n;
}

void Dry::apply(Candidates& c) {
    if (!enabled()) return;
    const int n = (int)std::min(window_.size(), (size_t)last_n_);
    if (n <= allowed_) return;
    const int limit = repetition_limit(n);
    if (limit < allowed_) return;

    // z[k]: how many of the most recent tokens repeat the ones ending k tokens back
    // (a Z-array over the window read newest first).
    std::vector<int> z((size_t)n, 0);
    for (int k = 1, l = 0, r = 0; k < n; ++k) {
        int len = k < r ? std::min(r - k, z[(size_t)(k - l)]) : 0;
        while (k + len < n && window_.recent((size_t)len) == window_.recent((size_t)(k + len))) ++len;
        z[(size_t)k] = len;
        if (k + len > r) {
            l = k;
            r = k + len;
        }
    }
    // the token that followed each earlier occurrence would extend the repetition
    std::unordered_map<int32_t, int> longest;
    for (int k = 1; k < n; ++k) {
        const int len = std::min(z[(size_t)k], limit);
        if (len < allowed_) continue;
        int& best = longest[window_.recent((size_t)(k - 1))];
        best = std::max(best, len);
    }
    if (longest.empty()) return;

    int max_exponent = 0;
    if (base_ > 1.000001f) max_exponent = (int)(88.7228391f / std::log(base_));  // keep base^e finite
    for (size_t i = 0; i < c.size; ++i) {
        const auto it = longest.find(c.data[i].id);
        if (it == longest.end()) continue;
        bool lone_breaker = false;
        const auto range = breakers_.equal_range(c.data[i].id);
        for (auto b = range.first; b != range.second && !lone_breaker; ++b) lone_breaker = b->second.empty();
        if (lone_breaker) continue;
        int e = it->second - allowed_;
        if (max_exponent > 0 && e > max_exponent) e = max_exponent;
        const float penalty = (float)(multiplier_ * std::pow((double)base_, e));
        c.data[i].logit -= penalty;
    }
    c.sorted = false;
}

}  // namespace pyllama
