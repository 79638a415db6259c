#include "matcher.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <set>

namespace pyllama {
namespace {

// Step weights, so that a step costs about the same time whatever it is (~10 ns):
// testing one candidate against a terminal is the unit; expanding a stack copies
// it and looks it up in a set; a call of reject_for_stack allocates its lists.
constexpr uint64_t kExpandCost = 8;
constexpr uint64_t kCallCost = 16;

bool is_end(const GElem* p) { return p->type == GType::End || p->type == GType::Alt; }
bool is_token(const GElem* p) { return p->type == GType::Token || p->type == GType::TokenNot; }

// Does ch satisfy the character set starting at p? Also returns the element after the set.
std::pair<bool, const GElem*> match_char(const GElem* p, uint32_t ch) {
    const bool positive = p->type == GType::Char || p->type == GType::CharAny;
    bool found = false;
    do {
        if (p[1].type == GType::CharRngUpper) {
            found = found || (p->value <= ch && ch <= p[1].value);
            p += 2;
        } else if (p->type == GType::CharAny) {
            found = true;
            p += 1;
        } else {
            found = found || p->value == ch;
            p += 1;
        }
    } while (p->type == GType::CharAlt);
    return {found == positive, p};
}

// Could some completion of the partial UTF-8 sequence satisfy the set at p?
bool match_partial(const GElem* p, PartialUtf8 partial) {
    const bool positive = p->type == GType::Char || p->type == GType::CharAny;
    const int n = partial.n_remain;
    if (n < 0 || (n == 1 && partial.value < 2)) return false;  // invalid, or an overlong 2-byte form
    uint32_t low = partial.value << (n * 6);
    const uint32_t high = low | ((1u << (n * 6)) - 1);
    if (low == 0) {
        if (n == 2) low = 1u << 11;
        else if (n == 3) low = 1u << 16;
    }
    do {
        if (p[1].type == GType::CharRngUpper) {
            if (p->value <= high && low <= p[1].value) return positive;
            p += 2;
        } else if (p->type == GType::CharAny) {
            return true;
        } else {
            if (low <= p->value && p->value <= high) return positive;
            p += 1;
        }
    } while (p->type == GType::CharAlt);
    return !positive;
}

bool match_token(const GElem* p, int32_t token) {
    return p->type == GType::Token ? p->value == (uint32_t)token : p->value != (uint32_t)token;
}

// Expand a stack until every resulting stack ends at a terminal (or is empty).
void advance_stack(const Grammar& g, const GStack& stack, StackList& out, WorkBudget& work) {
    std::vector<GStack> todo{stack};
    std::set<GStack> seen;
    while (!todo.empty()) {
        work.spend(kExpandCost);
        GStack cur = std::move(todo.back());
        todo.pop_back();
        if (cur.empty() || cur.back()->type != GType::RuleRef) {
            out.add(std::move(cur));
            continue;
        }
        if (!seen.insert(cur).second) continue;
        const GElem* pos = cur.back();
        const GElem* sub = g.rules[pos->value].data();
        for (;;) {
            GStack next(cur.begin(), cur.end() - 1);
            if (!is_end(pos + 1)) next.push_back(pos + 1);
            if (!is_end(sub)) next.push_back(sub);
            todo.push_back(std::move(next));
            while (!is_end(sub)) ++sub;
            if (sub->type != GType::Alt) break;
            ++sub;
        }
    }
}

GStack pop_and_continue(const GStack& stack, const GElem* after) {
    GStack next(stack.begin(), stack.end() - 1);
    if (!is_end(after)) next.push_back(after);
    return next;
}

}  // namespace

void WorkBudget::too_much() const {
    throw GrammarTooComplex("grammar is too complex to follow: more than " + std::to_string(max) +
                            " steps for one token");
}

bool StackList::add(GStack s) {
    constexpr size_t kLinear = 16;  // below this, a scan beats a tree
    if (items_.size() < kLinear) {
        if (std::find(items_.begin(), items_.end(), s) != items_.end()) return false;
    } else {
        if (index_.empty()) index_.insert(items_.begin(), items_.end());
        if (!index_.insert(s).second) return false;
    }
    if (items_.size() >= kMaxStacks)
        throw GrammarTooComplex("grammar is too ambiguous to follow (more than " + std::to_string(kMaxStacks) +
                                " stacks at once)");
    items_.push_back(std::move(s));
    return true;
}

std::vector<GStack> initial_stacks(const Grammar& g, WorkBudget& work) {
    StackList out;
    const GElem* pos = g.rules[g.root].data();
    for (;;) {  // one stack per alternative of the root rule
        GStack s;
        if (!is_end(pos)) s.push_back(pos);
        advance_stack(g, s, out, work);
        while (!is_end(pos)) ++pos;
        if (pos->type != GType::Alt) break;
        ++pos;
    }
    return out.take();
}

PartialUtf8 decode_utf8(const std::string& bytes, PartialUtf8 partial, std::vector<uint32_t>& out) {
    static const int lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4};
    size_t pos = 0;
    uint32_t value = partial.value;
    int n_remain = partial.n_remain;
    while (pos < bytes.size() && n_remain > 0) {  // finish the pending character
        const unsigned char b = (unsigned char)bytes[pos];
        if ((b >> 6) != 2) {
            out.push_back(0);
            return {0, -1};
        }
        value = value << 6 | (b & 0x3F);
        ++pos;
        --n_remain;
    }
    if (partial.n_remain > 0 && n_remain == 0) out.push_back(value);
    while (pos < bytes.size()) {
        const unsigned char first = (unsigned char)bytes[pos];
        const int n = lens[first >> 4];
        if (n == 0) {  // a stray continuation byte
            out.push_back(0);
            return {0, -1};
        }
        value = first & ((1u << (8 - n)) - 1);
        n_remain = n - 1;
        ++pos;
        while (pos < bytes.size() && n_remain > 0) {
            value = value << 6 | ((unsigned char)bytes[pos] & 0x3F);
            ++pos;
            --n_remain;
        }
        if (n_remain == 0) out.push_back(value);
    }
    out.push_back(0);
    return {n_remain == 0 ? 0 : value, n_remain};
}

GrammarVocab::GrammarVocab(std::vector<std::string> pieces, const std::vector<int32_t>& eog)
    : pieces_(std::move(pieces)), eog_(pieces_.size(), 0) {
    for (int32_t t : eog)
        if (t >= 0 && (size_t)t < eog_.size()) eog_[(size_t)t] = 1;
    offsets_.reserve(pieces_.size());
    trailing_.reserve(pieces_.size());
    std::vector<uint32_t> tmp;
    for (const std::string& p : pieces_) {
        tmp.clear();
        trailing_.push_back(decode_utf8(p, {}, tmp));
        offsets_.push_back(cps_.size());
        cps_.insert(cps_.end(), tmp.begin(), tmp.end());
    }
}

template <class F>
auto GrammarMatcher::metered(F&& fn) const {
    WorkBudget work(max_steps_);
    struct Record {  // the steps are recorded when fn throws, too
        const WorkBudget& w;
        uint64_t& last;
        uint64_t& total;
        ~Record() {
            last = w.used();
            total += last;
        }
    } record{work, last_steps_, total_steps_};
    return fn(work);
}

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const GrammarVocab> vocab,
                               uint64_t max_steps)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)), max_steps_(max_steps) {
    stacks_ = metered([&](WorkBudget& work) { return initial_stacks(*grammar_, work); });
}

bool GrammarMatcher::complete() const {
    return std::any_of(stacks_.begin(), stacks_.end(), [](const GStack& s) { return s.empty(); }) &&
           partial_.n_remain == 0;
}

std::vector<GStack> GrammarMatcher::advance_over(const std::vector<GStack>& stacks, const uint32_t* cps,
                                                 WorkBudget& work) const {
    std::vector<GStack> cur;
    for (const GStack& s : stacks)
        if (!s.empty() && !is_token(s.back())) cur.push_back(s);
    for (; *cps && !cur.empty(); ++cps) {
        work.spend(cur.size());
        StackList next;
        for (const GStack& s : cur) {
            if (s.empty() || is_token(s.back())) continue;
            const auto m = match_char(s.back(), *cps);
            if (m.first) advance_stack(*grammar_, pop_and_continue(s, m.second), next, work);
        }
        cur = next.take();
    }
    return cur;
}

bool GrammarMatcher::allows(int32_t token) const {
    return metered([&](WorkBudget& work) { return allows(token, work); });
}

bool GrammarMatcher::allows(int32_t token, WorkBudget& work) const {
    if (token < 0 || (size_t)token >= vocab_->size()) return false;
    if (vocab_->is_eog(token)) return complete();
    const std::string& piece = vocab_->piece(token);
    if (piece.empty() || piece[0] == '\0') return false;  // code points are 0-terminated
    if (partial_.n_remain == 0)  // a token reference cannot finish a character begun before it
        for (const GStack& s : stacks_)
            if (!s.empty() && is_token(s.back()) && match_token(s.back(), token)) return true;
    std::vector<uint32_t> tmp;
    const uint32_t* cps = vocab_->code_points(token);
    PartialUtf8 partial = vocab_->trailing(token);
    if (partial_.n_remain != 0) {
        partial = decode_utf8(piece, partial_, tmp);
        cps = tmp.data();
    }
    if (partial.n_remain < 0) return false;
    for (const GStack& s : advance_over(stacks_, cps, work))
        if (partial.n_remain == 0 ? true : (!s.empty() && match_partial(s.back(), partial))) return true;
    return false;
}

bool GrammarMatcher::accept(int32_t token) {
    return metered([&](WorkBudget& work) {
        if (!allows(token, work)) return false;
        if (vocab_->is_eog(token)) return true;
        StackList next;
        for (const GStack& s : stacks_)
            if (partial_.n_remain == 0 && !s.empty() && is_token(s.back()) && match_token(s.back(), token))
                advance_stack(*grammar_, pop_and_continue(s, s.back() + 1), next, work);
        std::vector<uint32_t> tmp;
        const PartialUtf8 partial = decode_utf8(vocab_->piece(token), partial_, tmp);
        std::vector<GStack> by_chars =
            partial.n_remain < 0 ? std::vector<GStack>{} : advance_over(stacks_, tmp.data(), work);
        if (partial.n_remain > 0) {
            by_chars.erase(std::remove_if(by_chars.begin(), by_chars.end(),
                                          [&](const GStack& s) { return s.empty() || !match_partial(s.back(), partial); }),
                           by_chars.end());
        }
        const bool by_chars_empty = by_chars.empty();
        for (GStack& s : by_chars) next.add(std::move(s));
        stacks_ = next.take();
        partial_ = by_chars_empty ? PartialUtf8{} : partial;
        return true;
    });
}

bool GrammarMatcher::accept_text(const std::string& text) {
    if (text.empty()) return true;  // advance_over would drop the complete and token stacks
    return metered([&](WorkBudget& work) {
        std::vector<uint32_t> tmp;
        const PartialUtf8 partial = decode_utf8(text, partial_, tmp);
        if (partial.n_remain < 0) return false;
        std::vector<GStack> next = advance_over(stacks_, tmp.data(), work);
        if (partial.n_remain > 0)  // as accept(): only stacks that can finish the pending character
            next.erase(std::remove_if(next.begin(), next.end(),
                                      [&](const GStack& s) { return s.empty() || !match_partial(s.back(), partial); }),
                       next.end());
        if (next.empty() && ((!tmp.empty() && tmp[0] != 0) || partial.n_remain > 0)) return false;
        stacks_ = std::move(next);
        partial_ = partial;
        return true;
    });
}

void GrammarMatcher::reject_for_stack(const GStack& stack, const std::vector<Cand>& cands,
                                      std::vector<Cand>& rejects, WorkBudget& work) const {
    work.spend(kCallCost + cands.size());
    if (stack.empty()) {
        for (const Cand& c : cands)
            if (*c.cps != 0 || c.partial.n_remain != 0) rejects.push_back(c);
        return;
    }
    const GElem* top = stack.back();
    if (is_token(top)) {
        // As allows(): a whole token (no character of it matched yet, none pending from
        // before) is taken or refused by the reference alone, whatever its text (even
        // invalid UTF-8); the rest of a token, or a character left unfinished, never is.
        for (const Cand& c : cands) {
            if (c.cps == c.start && partial_.n_remain == 0) {
                if (!match_token(top, c.id)) rejects.push_back(c);
            } else if (*c.cps != 0 || c.partial.n_remain != 0) {
                rejects.push_back(c);
            }
        }
        return;
    }
    std::vector<Cand> next;
    next.reserve(cands.size());
    for (const Cand& c : cands) {
        if (*c.cps == 0) {  // the token ends here: fine unless a partial character cannot go on
            if (c.partial.n_remain != 0 && !match_partial(top, c.partial)) rejects.push_back(c);
        } else if (match_char(top, *c.cps).first) {
            next.push_back({c.index, c.cps + 1, c.start, c.partial, c.id});
        } else {
            rejects.push_back(c);
        }
    }
    if (next.empty()) return;
    StackList stacks_after;
    advance_stack(*grammar_, pop_and_continue(stack, match_char(top, 0).second), stacks_after, work);
    std::vector<Cand> still = std::move(next);
    for (const GStack& s : stacks_after.items()) {
        std::vector<Cand> r;
        reject_for_stack(s, still, r, work);
        still = std::move(r);
        if (still.empty()) break;
    }
    for (const Cand& c : still) rejects.push_back({c.index, c.cps - 1, c.start, c.partial, c.id});
}

std::shared_ptr<const std::vector<uint64_t>> MaskCache::find(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = masks_.find(key);
    return it == masks_.end() ? nullptr : it->second;
}

void MaskCache::put(const std::string& key, std::shared_ptr<const std::vector<uint64_t>> mask) {
    std::lock_guard<std::mutex> lock(mu_);
    if (masks_.size() >= kMaxEntries) masks_.clear();
    masks_.emplace(key, std::move(mask));
}

std::shared_ptr<const std::vector<uint64_t>> GrammarMatcher::full_mask() const {
    std::string key;
    auto put = [&key](const void* p, size_t n) { key.append(static_cast<const char*>(p), n); };
    put(&grammar_->uid, sizeof grammar_->uid);
    put(&partial_.value, sizeof partial_.value);
    put(&partial_.n_remain, sizeof partial_.n_remain);
    for (const GStack& s : stacks_) {
        const size_t n = s.size();
        put(&n, sizeof n);
        put(s.data(), n * sizeof(const GElem*));
    }
    if (auto hit = vocab_->masks().find(key)) return hit;
    const size_t n_vocab = vocab_->size();
    std::vector<float> zeros(n_vocab, 0.0f);
    Candidates all;
    all.reset(zeros.data(), (int32_t)n_vocab);
    metered([&](WorkBudget& work) {
        reject_direct(all, work);
        return 0;
    });
    auto bits = std::make_shared<std::vector<uint64_t>>((n_vocab + 63) / 64, 0);
    for (size_t i = 0; i < n_vocab; ++i)
        if (all.data[i].logit != -INFINITY) (*bits)[(size_t)all.data[i].id >> 6] |= 1ull << (all.data[i].id & 63);
    vocab_->masks().put(key, bits);
    return bits;
}

void GrammarMatcher::reject(Candidates& cands) const {
    if (cands.size * 4 < vocab_->size()) {  // a few candidates: check them alone
        metered([&](WorkBudget& work) {
            reject_direct(cands, work);
            return 0;
        });
        return;
    }
    const auto bits = full_mask();
    for (size_t i = 0; i < cands.size; ++i) {
        TokenData& t = cands.data[i];
        if (t.id < 0 || (size_t)t.id >= vocab_->size() || !(((*bits)[(size_t)t.id >> 6] >> (t.id & 63)) & 1))
            t.logit = -INFINITY;
    }
}

void GrammarMatcher::reject_direct(Candidates& cands, WorkBudget& work) const {
    const bool allow_eog = complete();
    std::deque<std::vector<uint32_t>> decoded;  // stable storage when a partial character is pending
    std::vector<Cand> todo;
    todo.reserve(cands.size);
    for (size_t i = 0; i < cands.size; ++i) {
        TokenData& t = cands.data[i];
        if (t.logit == -INFINITY) continue;
        if (t.id < 0 || (size_t)t.id >= vocab_->size()) {
            t.logit = -INFINITY;
            continue;
        }
        if (vocab_->is_eog(t.id)) {
            if (!allow_eog) t.logit = -INFINITY;
            continue;
        }
        if (vocab_->piece(t.id).empty() || vocab_->piece(t.id)[0] == '\0') {
            t.logit = -INFINITY;
            continue;
        }
        if (partial_.n_remain == 0) {
            todo.push_back({i, vocab_->code_points(t.id), vocab_->code_points(t.id), vocab_->trailing(t.id), t.id});
        } else {
            decoded.emplace_back();
            const PartialUtf8 p = decode_utf8(vocab_->piece(t.id), partial_, decoded.back());
            todo.push_back({i, decoded.back().data(), decoded.back().data(), p, t.id});
        }
    }
    for (const GStack& s : stacks_) {  // a candidate survives if any stack takes it
        std::vector<Cand> r;
        reject_for_stack(s, todo, r, work);
        todo = std::move(r);
        if (todo.empty()) break;
    }
    for (const Cand& c : todo) cands.data[c.index].logit = -INFINITY;
}

}  // namespace pyllama
