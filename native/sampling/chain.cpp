#include "chain.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace pyllama {

void MaskFilter::apply(Candidates& c) const {
    for (size_t i = 0; i < c.size; ++i)
        if (!allows(c.data[i].id)) c.data[i].logit = -INFINITY;
}

SamplerChain::SamplerChain(const SamplingConfig& config) : n_vocab_(config.n_vocab) {
    if (config.n_vocab <= 0) throw std::invalid_argument("sampler chain needs n_vocab > 0");
    // one concrete seed for every generator of the chain, so a random one can be reported
    SamplingConfig cfg = config;
    cfg.seed = resolve_seed(config.seed);
    if (cfg.seed == kRandomSeed) cfg.seed -= 1;  // a drawn seed must stay fixed on reset
    seed_ = cfg.seed;
    const size_t min_keep = (size_t)std::max(cfg.min_keep, 0);
    if (!cfg.logit_bias.empty()) samplers_.push_back(std::make_unique<LogitBias>(cfg.logit_bias));
    if (cfg.mirostat == 1 || cfg.mirostat == 2) {
        samplers_.push_back(std::make_unique<Temperature>(cfg.temperature, 0.0f, 1.0f));
        samplers_.push_back(
            std::make_unique<Mirostat>(cfg.mirostat, cfg.n_vocab, cfg.seed, cfg.mirostat_tau, cfg.mirostat_eta));
        return;
    }
    bool adaptive = false;
    for (SamplerKind kind : cfg.order) {
        switch (kind) {
            case SamplerKind::AdaptiveP:
                adaptive = true;
                break;
            case SamplerKind::Penalties:
                samplers_.push_back(std::make_unique<Penalties>(cfg.repeat_last_n, cfg.repeat_penalty,
                                                                cfg.frequency_penalty, cfg.presence_penalty));
                break;
            case SamplerKind::Dry:
                samplers_.push_back(std::make_unique<Dry>(cfg.dry_multiplier, cfg.dry_base, cfg.dry_allowed_length,
                                                          cfg.dry_penalty_last_n, cfg.dry_breakers));
                break;
            case SamplerKind::TopNSigma:
                samplers_.push_back(std::make_unique<TopNSigma>(cfg.top_n_sigma));
                break;
            case SamplerKind::TopK:
                samplers_.push_back(std::make_unique<TopK>(cfg.top_k));
                break;
            case SamplerKind::TypicalP:
                samplers_.push_back(std::make_unique<TypicalP>(cfg.typical_p, min_keep));
                break;
            case SamplerKind::TopP:
                samplers_.push_back(std::make_unique<TopP>(cfg.top_p, min_keep));
                break;
            case SamplerKind::MinP:
                samplers_.push_back(std::make_unique<MinP>(cfg.min_p, min_keep));
                break;
            case SamplerKind::Xtc:
                samplers_.push_back(
                    std::make_unique<Xtc>(cfg.xtc_probability, cfg.xtc_threshold, min_keep, cfg.seed));
                break;
            case SamplerKind::Temperature:
                samplers_.push_back(
                    std::make_unique<Temperature>(cfg.temperature, cfg.dynatemp_range, cfg.dynatemp_exponent));
                break;
        }
    }
    if (adaptive)
        samplers_.push_back(std::make_unique<AdaptiveP>(cfg.adaptive_target, cfg.adaptive_decay, cfg.seed));
    else
        samplers_.push_back(std::make_unique<Dist>(cfg.seed));
}

void SamplerChain::run(const float* logits, const TokenFilter* pre) {
    cur_.reset(logits, n_vocab_);
    if (pre) pre->apply(cur_);
    for (auto& s : samplers_) s->apply(cur_);
}

int32_t SamplerChain::sample(const float* logits, const TokenFilter* filter) {
    run(logits, nullptr);
    if (cur_.selected < 0) throw std::runtime_error("no token left to sample");
    int32_t token = cur_.data[cur_.selected].id;
    if (filter && !filter->allows(token)) {
        run(logits, filter);
        if (cur_.selected < 0) throw std::runtime_error("no token left to sample");
        token = cur_.data[cur_.selected].id;
    }
    return token;
}

void SamplerChain::accept(int32_t token) {
    for (auto& s : samplers_) s->accept(token);
}

void SamplerChain::reset() {
    for (auto& s : samplers_) s->reset();
}

std::vector<TokenData> SamplerChain::ranked() const {
    std::vector<TokenData> out(cur_.data, cur_.data + cur_.size);
    if (!cur_.sorted)
        std::sort(out.begin(), out.end(), [](const TokenData& a, const TokenData& b) { return a.p > b.p; });
    return out;
}

std::vector<const char*> SamplerChain::names() const {
    std::vector<const char*> out;
    for (const auto& s : samplers_) out.push_back(s->name());
    return out;
}

std::vector<TokenData> top_probabilities(const float* logits, int32_t n_vocab, size_t n, int32_t token,
                                         float* token_p) {
    float max_l = -INFINITY;
    for (int32_t i = 0; i < n_vocab; ++i) max_l = std::max(max_l, logits[i]);
    float sum = 0.0f;
    for (int32_t i = 0; i < n_vocab; ++i) sum += std::exp(logits[i] - max_l);
    Candidates c;
    c.reset(logits, n_vocab);
    std::vector<TokenData> top;
    top_into(c, std::min(n, (size_t)n_vocab), top);
    for (auto& t : top) t.p = std::exp(t.logit - max_l) / sum;
    if (token_p)
        *token_p = token >= 0 && token < n_vocab ? std::exp(logits[token] - max_l) / sum : 0.0f;
    return top;
}

}  // namespace pyllama
