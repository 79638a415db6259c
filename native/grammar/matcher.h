// A grammar's state while text is generated: llama.cpp's pushdown stacks, each
// ending at a terminal (a character set or a token reference). Accepting a token
// advances every stack through the token's code points; a token whose text cannot
// continue any stack is refused. A character split over tokens is carried as a
// partial UTF-8 sequence and must be able to complete.
#pragma once

#include <memory>
#include <mutex>
#include <set>
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
//
// Shared across threads: one per vocabulary, used by every slot's matcher (and by
// any thread holding a matcher, GIL released); mu_ guards the map, and a mask is
// immutable once made (handed out as shared_ptr<const>, so clearing the map never
// frees one in use). Bounded: kMaxEntries masks.
class MaskCache {
public:
    static constexpr size_t kMaxEntries = 256;  // 32 KiB each for a 262k vocabulary
    std::shared_ptr<const std::vector<uint64_t>> find(const std::string& key);
    void put(const std::string& key, std::shared_ptr<const std::vector<uint64_t>> mask);

private:
    std::mutex mu_;
    std::unordered_map<std::string, std::shared_ptr<const std::vector<uint64_t>>> masks_;
};

// Shared across threads (built once per tokenizer, used by every request's matcher):
// immutable after construction except the MaskCache, which locks itself.
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

// At most this many stacks at once: an ambiguous grammar must not eat the machine.
constexpr size_t kMaxStacks = 20000;

// Work allowed for one matcher call (one mask, allows, accept or accept_text): a step
// is one stack expanded or one candidate token tested against one terminal. A full
// mask of a JSON-schema grammar over a 262k vocabulary takes a few million steps;
// an ambiguous grammar (e ::= "=" | "=" | ..., e e e ... "x") takes exponentially
// many, and stops here instead of stalling the engine.
struct WorkBudget {
    explicit WorkBudget(uint64_t max_steps) : max(max_steps), left(max_steps) {}
    void spend(uint64_t n) {
        if (n > left) {
            left = 0;  // used() == max: the whole budget went
            too_much();
        }
        left -= n;
    }
    uint64_t used() const { return max - left; }
    [[noreturn]] void too_much() const;

    uint64_t max, left;
};

// Distinct stacks in insertion order; the index (for the dedup) is built only
// once the list grows, so the many small lists of a mask cost a linear scan.
class StackList {
public:
    // false when the stack is already there; GrammarTooComplex past kMaxStacks
    bool add(GStack s);
    const std::vector<GStack>& items() const { return items_; }
    std::vector<GStack> take() { return std::move(items_); }
    bool empty() const { return items_.empty(); }

private:
    std::vector<GStack> items_;
    std::set<GStack> index_;
};

// The stacks a grammar starts with. Parsing a request's grammar calls this too, so
// one that is too ambiguous to start is refused then (GrammarTooComplex) rather
// than when the engine first masks.
std::vector<GStack> initial_stacks(const Grammar& g, WorkBudget& work);

// Shared across threads: nothing. A matcher follows one generation and is used by
// one thread at a time (the engine's); the Grammar and GrammarVocab it points to
// are immutable after construction, except the vocabulary's MaskCache, which
// holds its own lock. Every call may throw GrammarTooComplex (see WorkBudget).
class GrammarMatcher {
public:
    // Steps per call: a mask of an ordinary grammar stays far below (see WorkBudget);
    // the exponential example trips it in ~0.26 s, while the worst ordinary mask
    // measured takes 6.3M steps (benchmarks/bench_grammar_budget.py).
    static constexpr uint64_t kDefaultMaxSteps = 50'000'000;

    GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const GrammarVocab> vocab,
                   uint64_t max_steps = kDefaultMaxSteps);

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
    // Steps the last call took (for tests and measurements).
    uint64_t last_steps() const { return last_steps_; }
    // Steps of every call so far: the budget bounds one call, not a generation; a caller
    // that wants to bound a whole request's grammar work reads this.
    uint64_t total_steps() const { return total_steps_; }
    uint64_t max_steps() const { return max_steps_; }

private:
    struct Cand {
        size_t index;
        const uint32_t* cps;    // the code points still to match
        const uint32_t* start;  // the token's first code point (cps == start: none matched yet)
        PartialUtf8 partial;
        int32_t id;
    };
    // Runs fn with a fresh budget and records the steps it took.
    template <class F>
    auto metered(F&& fn) const;
    bool allows(int32_t token, WorkBudget& work) const;
    std::vector<GStack> advance_over(const std::vector<GStack>& stacks, const uint32_t* cps, WorkBudget& work) const;
    void reject_for_stack(const GStack& stack, const std::vector<Cand>& cands, std::vector<Cand>& rejects,
                          WorkBudget& work) const;
    void reject_direct(Candidates& c, WorkBudget& work) const;

    std::shared_ptr<const Grammar> grammar_;
    std::shared_ptr<const GrammarVocab> vocab_;
    std::vector<GStack> stacks_;
    PartialUtf8 partial_;
    uint64_t max_steps_;
    mutable uint64_t last_steps_ = 0;  // const calls measure too; one thread at a time (above)
    mutable uint64_t total_steps_ = 0;
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
