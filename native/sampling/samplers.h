// The samplers of llama-server's chain, each with llama.cpp's semantics. A sampler
// rewrites the candidate list (apply), and may keep history of the tokens the
// sequence produced (accept) or a random state (reset re-seeds it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "candidates.h"

namespace pyllama {

class Sampler {
public:
    virtual ~Sampler() = default;
    virtual const char* name() const = 0;
    virtual void apply(Candidates& c) = 0;
    virtual void accept(int32_t /*token*/) {}
    virtual void reset() {}
};

// The seed a sampler's generator starts from: a fixed seed, or a fresh random one
// for kRandomSeed (-1 as unsigned).
constexpr uint32_t kRandomSeed = 0xFFFFFFFFu;
uint32_t resolve_seed(uint32_t seed);

// A window of the last n tokens a sequence saw, oldest first.
class TokenWindow {
public:
    explicit TokenWindow(size_t capacity) : capacity_(capacity) {}
    // Returns the token pushed out, or -1.
    int32_t push(int32_t token);
    size_t size() const { return tokens_.size(); }
    // i-th most recent (0 = last).
    int32_t recent(size_t i) const { return tokens_[tokens_.size() - 1 - i]; }
    void clear() { tokens_.clear(); }

private:
    size_t capacity_;
    std::deque<int32_t> tokens_;
};

// -- logit adjustments --------------------------------------------------------------

class LogitBias : public Sampler {
public:
    explicit LogitBias(std::vector<std::pair<int32_t, float>> biases) : biases_(std::move(biases)) {}
    const char* name() const override { return "logit-bias"; }
    void apply(Candidates& c) override;

private:
    std::vector<std::pair<int32_t, float>> biases_;
};

class Penalties : public Sampler {
public:
    Penalties(int32_t last_n, float repeat, float freq, float present)
        : last_n_(last_n), repeat_(repeat), freq_(freq), present_(present), window_((size_t)std::max(last_n, 0)) {}
    const char* name() const override { return "penalties"; }
    void apply(Candidates& c) override;
    void accept(int32_t token) override;
    void reset() override;

private:
    bool disabled() const { return last_n_ == 0 || (repeat_ == 1.0f && freq_ == 0.0f && present_ == 0.0f); }
    int32_t last_n_;
    float repeat_, freq_, present_;
    TokenWindow window_;
    std::unordered_map<int32_t, int> counts_;
};

// DRY: penalise the token that would extend a repetition of the recent text beyond
// allowed_length, by multiplier * base^(length - allowed_length). Sequence breakers
// (head token, then the tokens that must precede it) cut the scan short.
class Dry : public Sampler {
public:
    using Breakers = std::unordered_multimap<int32_t, std::vector<int32_t>>;
    Dry(float multiplier, float base, int32_t allowed_length, int32_t last_n, Breakers breakers)
        : multiplier_(multiplier), base_(base), allowed_(allowed_length), last_n_(last_n),
          breakers_(std::move(breakers)), window_((size_t)std::max(last_n, 0)) {}
    const char* name() const override { return "dry"; }
    void apply(Candidates& c) override;
    void accept(int32_t token) override;
    void reset() override { window_.clear(); }

private:
    bool enabled() const { return multiplier_ != 0.0f && base_ >= 1.0f && last_n_ != 0; }
    int repetition_limit(int n) const;
    float multiplier_, base_;
    int32_t allowed_, last_n_;
    Breakers breakers_;
    TokenWindow window_;
};

// -- truncation ---------------------------------------------------------------------

class TopK : public Sampler {
public:
    explicit TopK(int32_t k) : k_(k) {}
    const char* name() const override { return "top-k"; }
    void apply(Candidates& c) override;

private:
    int32_t k_;
};

class TopP : public Sampler {
public:
    TopP(float p, size_t min_keep) : p_(p), min_keep_(min_keep) {}
    const char* name() const override { return "top-p"; }
    void apply(Candidates& c) override;

private:
    float p_;
    size_t min_keep_;
};

class MinP : public Sampler {
public:
    MinP(float p, size_t min_keep) : p_(p), min_keep_(min_keep) {}
    const char* name() const override { return "min-p"; }
    void apply(Candidates& c) override;

private:
    float p_;
    size_t min_keep_;
};

class TypicalP : public Sampler {
public:
    TypicalP(float p, size_t min_keep) : p_(p), min_keep_(min_keep) {}
    const char* name() const override { return "typical"; }
    void apply(Candidates& c) override;

private:
    float p_;
    size_t min_keep_;
};

class TopNSigma : public Sampler {
public:
    explicit TopNSigma(float n) : n_(n) {}
    const char* name() const override { return "top-n-sigma"; }
    void apply(Candidates& c) override;

private:
    float n_;
};

// XTC: with the given probability, drop every token above the threshold but the
// least likely of them.
class Xtc : public Sampler {
public:
    Xtc(float probability, float threshold, size_t min_keep, uint32_t seed)
        : probability_(probability), threshold_(threshold), min_keep_(min_keep), seed_(seed) { reset(); }
    const char* name() const override { return "xtc"; }
    void apply(Candidates& c) override;
    void reset() override { rng_.seed(resolve_seed(seed_)); }

private:
    float probability_, threshold_;
    size_t min_keep_;
    uint32_t seed_;
    std::mt19937 rng_;
};

// -- temperature and the draw -------------------------------------------------------

// Temperature, dynamic when range > 0: the temperature follows the normalised
// entropy of the candidates within [t - range, t + range].
class Temperature : public Sampler {
public:
    Temperature(float t, float range, float exponent) : t_(t), range_(range), exponent_(exponent) {}
    const char* name() const override { return "temp-ext"; }
    void apply(Candidates& c) override;

private:
    float t_, range_, exponent_;
};

// The final draw from the softmax of what is left.
class Dist : public Sampler {
public:
    explicit Dist(uint32_t seed) : seed_(seed) { reset(); }
    const char* name() const override { return "dist"; }
    void apply(Candidates& c) override;
    void reset() override { rng_.seed(resolve_seed(seed_)); }

private:
    uint32_t seed_;
    std::mt19937 rng_;
};

// adaptive-p (llama.cpp PR 17927): the final draw, from probabilities reshaped to
// favour tokens near an adapted target probability. The target moves against an
// exponential moving average (decay) of the original probabilities of the tokens
// chosen, so that on average chosen tokens sit at `target`. A negative target: a
// plain draw from the probabilities.
class AdaptiveP : public Sampler {
public:
    AdaptiveP(float target, float decay, uint32_t seed)
        : target_(target), decay_(decay < 0.0f ? 0.0f : decay > 0.99f ? 0.99f : decay), seed_(seed) { reset(); }
    const char* name() const override { return "adaptive-p"; }
    void apply(Candidates& c) override;
    void accept(int32_t token) override;
    void reset() override;

private:
    float target_, decay_;
    uint32_t seed_;
    std::mt19937 rng_;
    float weighted_sum_ = 0.0f, total_weight_ = 0.0f;
    std::vector<float> original_;   // the probabilities before the reshaping, by candidate index
    int32_t pending_id_ = -1;
    int64_t pending_idx_ = -1;
};

// Mirostat v1 (top-k from an estimate of the Zipf exponent) and v2 (a surprise
// cut-off); both draw the token and adapt mu toward the target surprise tau.
class Mirostat : public Sampler {
public:
    Mirostat(int version, int32_t n_vocab, uint32_t seed, float tau, float eta)
        : version_(version), n_vocab_(n_vocab), seed_(seed), tau_(tau), eta_(eta) { reset(); }
    const char* name() const override { return version_ == 1 ? "mirostat" : "mirostat-v2"; }
    void apply(Candidates& c) override;
    void reset() override {
        mu_ = 2.0f * tau_;
        rng_.seed(resolve_seed(seed_));
    }
    float mu() const { return mu_; }

private:
    int version_;
    int32_t n_vocab_;
    uint32_t seed_;
    float tau_, eta_, mu_ = 0.0f;
    std::mt19937 rng_;
};

}  // namespace pyllama
