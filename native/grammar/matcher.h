// A grammar's state while text is generated: llama.cpp's pushdown stacks, each
// ending at a terminal (a character set or a token reference). Accepting a token
// advances every stack through the token's code points; a token whose text cannot
// continue any stack is refused. A character split over tokens is carried as a
// partial UTF-8 sequence and must be able to complete.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../sampling/chain.h"
#include "grammar.h"

namespace pyllama {

struct PartialUtf8 {
    uint32_t value = 0;
    int n_remain = 0;  // bytes still missing; -1: invalid
};

// The vocabulary as the grammar sees it: every token's text as code points (for
// the common case of no pending partial character), its trailing partial
// sequence, and the end-of-generation tokens.
// Full-vocabulary token masks by grammar state (grammar, stacks, partial character).
// States recur (every character inside a JSON string leaves the same stacks), and a
// mask over a large vocabulary costs tens of milliseconds; a cached one, microseconds.
class MaskCache {
public:
    static constexpr size_t kMaxEntries = 256;  // 32 KiB each for a 262k vocabulary
    std::shared_ptr<const std::vector<uint64_t>> find(const std::string& key);
    void put(const std::string& key, std::shared_ptr<const std::vector<uint64_t>> mask);

private:
    std::mutex mu_;
    std::unordered_map<std::string, std::shared_ptr<const std::vector<uint64_t>>> masks_;
};

class GrammarVocab {
public:
    GrammarVocab(std::vector<std::string> pieces, const std::vector<int32_t>& eog);
    size_t size() const { return pieces_.size(); }
    const std::string& piece(int32_t id) const { return pieces_[(size_t)id]; }
    bool is_eog(int32_t id) const { return eog_[(size_t)id] != 0; }
    // code points of the token decoded from a fresh start, 0-terminated
    const uint32_t* code_points(int32_t id) const { return cps_.data() + offsets_[(size_t)id]; }
    PartialUtf8 trailing(int32_t id) const { return trailing_[(size_t)id]; }
    MaskCache& masks() const { return *masks_; }

private:
    std::shared_ptr<MaskCache> masks_ = std::make_shared<MaskCache>();
    std::vector<std::string> pieces_;
    std::vector<uint8_t> eog_;
    std::vector<uint32_t> cps_;
    std::vector<size_t> offsets_;
    std::vector<PartialUtf8> trailing_;
};

// Code points of bytes following a partial sequence (0-terminated into out).
PartialUtf8 decode_utf8(const std::string& bytes, PartialUtf8 partial, std::vector<uint32_t>& out);

using GStack = std::vector<const GElem*>;

class GrammarMatcher {
public:
    GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const GrammarVocab> vocab);

    // Would the grammar accept this token now?
    bool allows(int32_t token) const;
    // Advance over the token; false (and no change) when the grammar refuses it.
    bool accept(int32_t token);
    // Advance over raw text (a prompt prefix the grammar must see); false if refused.
    bool accept_text(const std::string& text);
    // Set the logit of every candidate the grammar refuses to -inf.
    void reject(Candidates& c) const;
    // Bit per vocabulary token: allowed now (cached by grammar state).
    std::shared_ptr<const std::vector<uint64_t>> full_mask() const;
    // The text so far is a whole sentence of the grammar (end of generation allowed).
    bool complete() const;
    // Nothing can follow: the grammar is complete and no stack goes on.
    bool finished() const { return stacks_.empty() || (stacks_.size() == 1 && stacks_[0].empty()); }

private:
    struct Cand {
        size_t index;
        const uint32_t* cps;
        PartialUtf8 partial;
        int32_t id;
    };
    std::vector<GStack> advance_over(const std::vector<GStack>& stacks, const uint32_t* cps) const;
    void reject_for_stack(const GStack& stack, const std::vector<Cand>& cands, std::vector<Cand>& rejects) const;
    void reject_direct(Candidates& c) const;

    std::shared_ptr<const Grammar> grammar_;
    std::shared_ptr<const GrammarVocab> vocab_;
    std::vector<GStack> stacks_;
    PartialUtf8 partial_;
};

// The sampler chain's hook: the grammar as a token filter.
class GrammarFilter : public TokenFilter {
public:
    explicit GrammarFilter(std::shared_ptr<GrammarMatcher> m) : m_(std::move(m)) {}
    bool allows(int32_t token) const override { return m_->allows(token); }
    void apply(Candidates& c) const override { m_->reject(c); }

private:
    std::shared_ptr<GrammarMatcher> m_;
};

}  // namespace pyllama
