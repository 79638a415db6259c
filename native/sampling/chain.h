// A sampler chain as llama-server builds it for a request: logit bias first, then
// the configured samplers in order, then the seeded draw (or temperature ->
// mirostat, which replaces the chain). An optional token filter (the grammar's
// mask) is checked on the drawn token; if it refuses it, the draw is redone with
// the filter applied before the chain, as llama.cpp does.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "candidates.h"
#include "samplers.h"

namespace pyllama {

// AdaptiveP is not a step of the chain but its final draw: named anywhere in the
// order, it replaces the plain draw (llama.cpp's adaptive-p).
enum class SamplerKind { Penalties, Dry, TopNSigma, TopK, TypicalP, TopP, MinP, Xtc, Temperature, AdaptiveP };

struct SamplingConfig {
    int32_t n_vocab = 0;
    uint32_t seed = kRandomSeed;
    float temperature = 0.8f, dynatemp_range = 0.0f, dynatemp_exponent = 1.0f;
    int32_t top_k = 40;
    float top_p = 0.95f, min_p = 0.05f, typical_p = 1.0f, top_n_sigma = -1.0f;
    float xtc_probability = 0.0f, xtc_threshold = 0.1f;
    int32_t min_keep = 0;
    int32_t repeat_last_n = 64;
    float repeat_penalty = 1.0f, frequency_penalty = 0.0f, presence_penalty = 0.0f;
    float dry_multiplier = 0.0f, dry_base = 1.75f;
    int32_t dry_allowed_length = 2, dry_penalty_last_n = 64;
    Dry::Breakers dry_breakers;
    int32_t mirostat = 0;
    float mirostat_tau = 5.0f, mirostat_eta = 0.1f;
    float adaptive_target = -1.0f, adaptive_decay = 0.9f;
    std::vector<SamplerKind> order{SamplerKind::Penalties, SamplerKind::Dry,  SamplerKind::TopNSigma,
                                   SamplerKind::TopK,      SamplerKind::TypicalP, SamplerKind::TopP,
                                   SamplerKind::MinP,      SamplerKind::Xtc,  SamplerKind::Temperature};
    std::vector<std::pair<int32_t, float>> logit_bias;
};

class TokenFilter {
public:
    virtual ~TokenFilter() = default;
    virtual bool allows(int32_t token) const = 0;
    // Set the logit of every refused candidate to -inf.
    virtual void apply(Candidates& c) const = 0;
};

// A filter from a per-token allow mask.
class MaskFilter : public TokenFilter {
public:
    explicit MaskFilter(std::vector<uint8_t> allowed) : allowed_(std::move(allowed)) {}
    bool allows(int32_t token) const override {
        return token >= 0 && (size_t)token < allowed_.size() && allowed_[(size_t)token];
    }
    void apply(Candidates& c) const override;

private:
    std::vector<uint8_t> allowed_;
};

class SamplerChain {
public:
    explicit SamplerChain(const SamplingConfig& config);

    // Draw the next token from one row of logits (n_vocab floats).
    int32_t sample(const float* logits, const TokenFilter* filter = nullptr);
    // The sequence produced this token (prompt tokens too): penalties and DRY see it.
    void accept(int32_t token);
    // Forget the history and re-seed the generators.
    void reset();

    // After sample(): the candidates left, most probable first, with their
    // probabilities after the chain (llama-server's post-sampling probabilities).
    std::vector<TokenData> ranked() const;
    int32_t n_vocab() const { return n_vocab_; }
    // The seed the draw actually uses (a random one when configured with -1).
    uint32_t seed() const { return seed_; }
    std::vector<const char*> names() const;

private:
    void run(const float* logits, const TokenFilter* pre);

    int32_t n_vocab_;
    std::vector<std::unique_ptr<Sampler>> samplers_;
    uint32_t seed_;
    Candidates cur_;
};

// Probabilities before any sampler: the softmax of the raw logits. The n most
// probable tokens (descending), and the probability of `token`.
std::vector<TokenData> top_probabilities(const float* logits, int32_t n_vocab, size_t n, int32_t token,
                                         float* token_p);

}  // namespace pyllama
