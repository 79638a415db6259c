#include "context.h"

#include <algorithm>
#include <string>
#include <thread>

namespace pyllama {

namespace {

constexpr double kDefragThreshold = 0.5;

// One cache layer per model layer: sliding-window layers rotate with their own RoPE base.
std::vector<KvLayerSpec> kv_layer_specs(const Model& model) {
    std::vector<KvLayerSpec> specs;
    if (model.is_encoder()) return specs;  // no cache: the bookkeeping alone, for a uniform interface
    const ModelParams& p = model.params();
    for (int64_t il = 0; il < p.n_layer; ++il) {
        const bool swa = model.is_swa(il);
        KvLayerSpec spec{p.n_head_kv, p.head_dim_k, p.head_dim_v, p.n_rot,
                         swa ? p.rope_base_swa : p.rope_base, swa ? p.rope_scale_swa : p.rope_scale,
                         model.traits().info.rope_neox, swa ? std::vector<float>{} : p.rope_freq_factors};
        spec.rope_ext_factor = p.rope_ext_factor;
        spec.rope_beta_fast = p.rope_beta_fast;
        spec.rope_beta_slow = p.rope_beta_slow;
        spec.rope_n_ctx_orig = p.rope_n_ctx_orig;
        specs.push_back(std::move(spec));
    }
    return specs;
}

}  // namespace

Context::Context(const Model& model, const ContextParams& cp)
    : m_(model),
      cp_(cp),
      pool_(cp.n_threads > 0 ? cp.n_threads : (int)std::max(1u, std::thread::hardware_concurrency()), cp.poll,
            cp.cpus),
      kv_(cp.n_ctx, kv_layer_specs(model), cp.type_k, cp.type_v),
      decoder_(model, kv_, pool_, lora_),
      encoder_(model, pool_) {
    if (cp_.n_ubatch <= 0) throw std::invalid_argument("n_ubatch must be positive");
}

int Context::attach_lora(const LoraAdapter* adapter) {
    if (!adapter) throw std::invalid_argument("no LoRA adapter given");
    if (m_.is_encoder()) throw std::invalid_argument("LoRA adapters apply to decoders only");
    if (adapter->model() != &m_)
        throw std::invalid_argument("the LoRA adapter was not checked against this context's model (finalize it first)");
    lora_.adapters.push_back(adapter);
    lora_.scales.emplace_back();
    lora_.scales.back().fill(0.0f);
    return (int)lora_.adapters.size() - 1;
}

void Context::set_lora_scales(int seq, const std::vector<float>& scales) {
    if (seq < 0 || seq >= kMaxSeq) throw std::invalid_argument("sequence id " + std::to_string(seq) + " is out of range");
    if (scales.size() > lora_.adapters.size())
        throw std::invalid_argument(std::to_string(scales.size()) + " LoRA scales for " +
                                    std::to_string(lora_.adapters.size()) + " adapters");
    for (size_t a = 0; a < lora_.adapters.size(); ++a) lora_.scales[a][seq] = a < scales.size() ? scales[a] : 0.0f;
}

std::vector<float> Context::lora_scales(int seq) const {
    if (seq < 0 || seq >= kMaxSeq) throw std::invalid_argument("sequence id " + std::to_string(seq) + " is out of range");
    std::vector<float> out;
    for (const auto& s : lora_.scales) out.push_back(s[seq]);
    return out;
}

void Context::check(const Batch& b) const {
    const ModelParams& p = m_.params();
    if (b.n_tokens <= 0) throw std::invalid_argument("the batch is empty");
    for (int64_t i = 0; i < b.n_tokens; ++i) {
        if (b.token[i] < 0 || b.token[i] >= p.n_vocab)
            throw std::invalid_argument("token id " + std::to_string(b.token[i]) + " is out of range [0, " +
                                        std::to_string(p.n_vocab) + ")");
        if (b.pos[i] < 0) throw std::invalid_argument("token positions must be >= 0");
        if (!b.seqs[i]) throw std::invalid_argument("every token needs at least one sequence id");
    }
    if (m_.is_encoder()) {
        if (!b.embd)
            throw std::invalid_argument("an encoder (" + p.arch + ") has no logits: decode with embeddings");
        return;
    }
    if (b.n_tokens > kv_.size() - kv_.n_used())
        throw ContextFull("the KV cache has " + std::to_string(kv_.size() - kv_.n_used()) + " free cells of " +
                          std::to_string(kv_.size()) + ", the batch needs " + std::to_string(b.n_tokens));
}

void Context::decode(const Batch& b, float* out) {
    check(b);
    if (m_.is_encoder()) {
        encode(b, out);
        return;
    }
    // Where cells sit never changes a result (attention follows positions), so
    // compacting is only about locality: do it when holes dominate the used span.
    if (kv_.n_used() > 0 && kv_.fragmentation() > kDefragThreshold) kv_.defrag();
    const int64_t width = output_width(b.embd);
    for (int64_t i0 = 0; i0 < b.n_tokens; i0 += cp_.n_ubatch) {
        const int64_t n = std::min(cp_.n_ubatch, b.n_tokens - i0);
        cells_.resize(n);
        if (!kv_.find_slot(b.pos + i0, b.seqs + i0, n, cells_.data()))
            throw ContextFull("no free KV cells for the micro-batch");
        decoder_.forward(b, i0, n, cells_.data(), out);
        for (int64_t i = i0; i < i0 + n; ++i)
            if (b.logits[i]) out += width;
    }
}

// Whole sequences (by the lowest of their ids), packed into micro-batches in the
// order they first appear; outputs go to their rows in batch order.
void Context::encode(const Batch& b, float* out) {
    const int64_t n = b.n_tokens;
    std::vector<int64_t> out_row(n);
    int64_t n_out = 0;
    for (int64_t i = 0; i < n; ++i) out_row[i] = b.logits[i] ? n_out++ : -1;
    if (n <= cp_.n_ubatch) {
        std::vector<int64_t> idx(n);
        for (int64_t i = 0; i < n; ++i) idx[i] = i;
        encoder_.forward(b, idx.data(), n, out_row.data(), out);
        return;
    }
    std::vector<std::vector<int64_t>> seqs(kMaxSeq);  // batch indices of each sequence
    std::vector<int> order;
    for (int64_t i = 0; i < n; ++i) {
        const int s = __builtin_ctzll(b.seqs[i]);
        if (seqs[s].empty()) order.push_back(s);
        seqs[s].push_back(i);
    }
    std::vector<int64_t> idx, rows;
    auto flush = [&] {
        if (idx.empty()) return;
        encoder_.forward(b, idx.data(), (int64_t)idx.size(), rows.data(), out);
        idx.clear();
        rows.clear();
    };
    for (int s : order) {
        const int64_t len = (int64_t)seqs[s].size();
        if (len > cp_.n_ubatch)
            throw std::invalid_argument("sequence " + std::to_string(s) + " has " + std::to_string(len) +
                                        " tokens, more than n_ubatch = " + std::to_string(cp_.n_ubatch) +
                                        ": an encoder computes a whole sequence in one micro-batch");
        if ((int64_t)idx.size() + len > cp_.n_ubatch) flush();
        for (int64_t i : seqs[s]) {
            idx.push_back(i);
            rows.push_back(out_row[i]);
        }
    }
    flush();
}

}  // namespace pyllama
