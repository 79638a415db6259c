#include <algorithm>
#include <atomic>
#include <cstring>

#include "../tokenizer/unicode.h"
#include "grammar.h"

namespace pyllama {

std::string Grammar::name_of(uint32_t id) const {
    for (const auto& [name, sid] : symbols)
        if (sid == id) return name;
    return "#" + std::to_string(id);
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || is_digit(c); }

class Parser {
public:
    Parser(std::string_view src, const std::function<int32_t(std::string_view)>& token_id, const GrammarLimits& lim)
        : src_(src), token_id_(token_id), lim_(lim) {}

    Grammar run(const std::string& root) {
        if (src_.size() > lim_.max_source_bytes)
            throw GrammarError("grammar is too large (" + std::to_string(src_.size()) + " bytes)");
        size_t pos = space(0, true);
        while (pos < src_.size()) pos = rule(pos);
        validate(root);
        return std::move(g_);
    }

private:
    [[noreturn]] void fail(const std::string& what, size_t pos) const {
        size_t line = 1, col = 1;
        for (size_t i = 0; i < pos && i < src_.size(); ++i) {
            if (src_[i] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        std::string near(src_.substr(std::min(pos, src_.size()), 24));
        for (char& c : near)
            if (c == '\n' || c == '\r') c = ' ';
        throw GrammarError(what + " at line " + std::to_string(line) + ", column " + std::to_string(col) +
                           (near.empty() ? std::string(" (end of grammar)") : " near '" + near + "'"));
    }

    char at(size_t pos) const { return pos < src_.size() ? src_[pos] : '\0'; }

    size_t space(size_t pos, bool newline_ok) const {
        while (pos < src_.size()) {
            const char c = src_[pos];
            if (c == '#') {
                while (pos < src_.size() && src_[pos] != '\r' && src_[pos] != '\n') ++pos;
            } else if (c == ' ' || c == '\t' || (newline_ok && (c == '\r' || c == '\n'))) {
                ++pos;
            } else {
                break;
            }
        }
        return pos;
    }

    size_t name_end(size_t pos) const {
        size_t end = pos;
        while (is_word(at(end))) ++end;
        if (end == pos) fail("expecting a rule name", pos);
        return end;
    }

    uint32_t symbol(std::string_view name) {
        auto it = g_.symbols.find(std::string(name));
        if (it != g_.symbols.end()) return it->second;
        return new_symbol(std::string(name));
    }

    uint32_t new_symbol(const std::string& name) {
        if (g_.symbols.size() >= lim_.max_rules)
            throw GrammarError("grammar has too many rules (more than " + std::to_string(lim_.max_rules) + ")");
        const uint32_t id = (uint32_t)g_.symbols.size();
        g_.symbols.emplace(name, id);
        return id;
    }

    uint32_t generated(const std::string& base) { return new_symbol(base + "_" + std::to_string(g_.symbols.size())); }

    [[noreturn]] void too_large() const {
        throw GrammarError("grammar is too large once expanded (more than " + std::to_string(lim_.max_elements) +
                           " elements)");
    }

    void add_rule(uint32_t id, GRule rule) {
        n_elements_ += rule.size();
        if (n_elements_ > lim_.max_elements) too_large();
        if (g_.rules.size() <= id) g_.rules.resize(id + 1);
        g_.rules[id] = std::move(rule);
    }

    uint32_t hex(size_t& pos, int n) const {
        uint32_t v = 0;
        for (int i = 0; i < n; ++i, ++pos) {
            const char c = at(pos);
            int d;
            if (c >= '0' && c <= '9') d = c - '0';
            else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
            else fail("expecting " + std::to_string(n) + " hex digits", pos);
            v = v << 4 | (uint32_t)d;
        }
        return v;
    }

    // One character of a literal or class: an escape or a UTF-8 sequence.
    uint32_t character(size_t& pos) const {
        if (pos >= src_.size()) fail("unexpected end of grammar", pos);
        if (src_[pos] == '\\') {
            const char e = at(pos + 1);
            pos += 2;
            switch (e) {
                case 'x': return hex(pos, 2);
                case 'u': return hex(pos, 4);
                case 'U': return hex(pos, 8);
                case 't': return '\t';
                case 'r': return '\r';
                case 'n': return '\n';
                case '\\': case '"': case '[': case ']': case '-': return (uint32_t)e;
                default: fail("unknown escape", pos - 2);
            }
        }
        const unsigned char c = (unsigned char)src_[pos];
        const int n = (int)utf8_len(c);
        uint32_t cp = n == 1 ? c : c & (0xFFu >> (n + 1));
        ++pos;
        for (int i = 1; i < n; ++i, ++pos) {
            if (pos >= src_.size() || (src_[pos] & 0xC0) != 0x80) fail("invalid UTF-8", pos);
            cp = cp << 6 | ((unsigned char)src_[pos] & 0x3F);
        }
        return cp;
    }

    uint64_t integer(size_t& pos) const {
        const size_t start = pos;
        uint64_t v = 0;
        while (is_digit(at(pos))) {
            v = v * 10 + (uint64_t)(src_[pos] - '0');
            if (v > (1ull << 40)) fail("number too large", start);
            ++pos;
        }
        if (pos == start) fail("expecting an integer", pos);
        return v;
    }

    uint32_t token(size_t& pos) {
        const size_t start = pos;  // at '<'
        ++pos;
        if (at(pos) == '[') {
            ++pos;
            const uint64_t id = integer(pos);
            if (id > 0xFFFFFFFFull) fail("token id too large", start);
            if (at(pos) != ']') fail("expecting ']'", pos);
            if (at(pos + 1) != '>') fail("expecting '>'", pos + 1);
            pos += 2;
            return (uint32_t)id;
        }
        while (pos < src_.size() && src_[pos] != '>') ++pos;
        if (at(pos) != '>') fail("expecting '>'", pos);
        ++pos;
        if (!token_id_) fail("token references need a vocabulary", start);
        const int32_t id = token_id_(src_.substr(start, pos - start));
        if (id < 0) fail("'" + std::string(src_.substr(start, pos - start)) + "' is not a single token", start);
        return (uint32_t)id;
    }

    size_t rule(size_t pos) {
        const size_t end = name_end(pos);
        const std::string name(src_.substr(pos, end - pos));
        const uint32_t id = symbol(name);
        if (id < defined_.size() && defined_[id]) fail("rule '" + name + "' is defined twice", pos);
        pos = space(end, false);
        if (src_.substr(pos, 3) != "::=") fail("expecting ::=", pos);
        pos = space(pos + 3, true);
        pos = alternates(pos, name, id, false, 0);
        if (defined_.size() <= id) defined_.resize(id + 1, false);
        defined_[id] = true;
        if (at(pos) == '\r') pos += at(pos + 1) == '\n' ? 2 : 1;
        else if (at(pos) == '\n') ++pos;
        else if (pos < src_.size()) fail("expecting a newline or the end", pos);
        return space(pos, true);
    }

    size_t alternates(size_t pos, const std::string& name, uint32_t id, bool nested, int depth) {
        GRule r;
        pos = sequence(pos, name, r, nested, depth);
        while (at(pos) == '|') {
            r.push_back({GType::Alt, 0});
            pos = space(pos + 1, true);
            pos = sequence(pos, name, r, nested, depth);
        }
        r.push_back({GType::End, 0});
        add_rule(id, std::move(r));
        return pos;
    }

    // S{m,n} -> S..S (m times) then n-m nested optional rules; S{m,} -> S..S S'
    // with S' ::= S S' | (llama.cpp's rewriting).
    void repeat(GRule& r, size_t last_start, uint64_t min_n, uint64_t max_n, bool no_max, uint64_t& n_prev,
                const std::string& name, size_t pos) {
        if (last_start == r.size()) fail("expecting something before the repetition", pos);
        const GRule prev(r.begin() + (ptrdiff_t)last_start, r.end());
        uint64_t total = 1;
        if (!no_max && max_n > 0) total = max_n;
        else if (min_n > 0) total = min_n;
        if (n_prev * total > lim_.max_repetition)
            fail("repetition too large (at most " + std::to_string(lim_.max_repetition) + " copies)", pos);
        // Size the expansion before making it: a 1 MB literal repeated 2000 times must
        // fail here, in microseconds, not after gigabytes of copies. Counted: the rules
        // already made, the unfinished rules of enclosing groups, this rule so far, and
        // the copies this repetition adds (min_n - 1 inline, one per optional rule).
        const uint64_t n_opt = no_max ? 1 : max_n - min_n;
        const uint64_t grow = (min_n > 1 ? (min_n - 1) * prev.size() : 0) + n_opt * (prev.size() + 3);
        if (n_elements_ + in_flight_ + r.size() + grow > lim_.max_elements) too_large();
        if (min_n == 0) {
            r.resize(last_start);
        } else {
            for (uint64_t i = 1; i < min_n; ++i) r.insert(r.end(), prev.begin(), prev.end());
        }
        uint32_t last_id = 0;
        for (uint64_t i = 0; i < n_opt; ++i) {
            GRule rec(prev);
            const uint32_t rec_id = generated(name);
            if (i > 0 || no_max) rec.push_back({GType::RuleRef, no_max ? rec_id : last_id});
            rec.push_back({GType::Alt, 0});
            rec.push_back({GType::End, 0});
            add_rule(rec_id, std::move(rec));
            last_id = rec_id;
        }
        if (n_opt > 0) r.push_back({GType::RuleRef, last_id});
        n_prev *= total;
    }

    size_t sequence(size_t pos, const std::string& name, GRule& r, bool nested, int depth) {
        size_t last_start = r.size();
        uint64_t n_prev = 1;
        while (pos < src_.size()) {
            const char c = src_[pos];
            if (c == '"') {
                ++pos;
                last_start = r.size();
                n_prev = 1;
                while (at(pos) != '"') {
                    if (pos >= src_.size()) fail("unterminated string", pos);
                    r.push_back({GType::Char, character(pos)});
                }
                pos = space(pos + 1, nested);
            } else if (c == '[') {
                const size_t open = pos++;
                GType first = GType::Char;
                if (at(pos) == '^') {
                    ++pos;
                    first = GType::CharNot;
                }
                last_start = r.size();
                n_prev = 1;
                while (at(pos) != ']') {
                    if (pos >= src_.size()) fail("unterminated character class", open);
                    const uint32_t lo = character(pos);
                    r.push_back({last_start < r.size() ? GType::CharAlt : first, lo});
                    if (at(pos) == '-' && at(pos + 1) != ']') {
                        if (pos + 1 >= src_.size()) fail("unterminated character class", open);
                        ++pos;
                        const uint32_t hi = character(pos);
                        if (hi < lo) fail("character range out of order", pos);
                        r.push_back({GType::CharRngUpper, hi});
                    }
                }
                if (last_start == r.size()) fail("empty character class", open);
                pos = space(pos + 1, nested);
            } else if (c == '<' || c == '!') {
                GType t = GType::Token;
                if (c == '!') {
                    t = GType::TokenNot;
                    ++pos;
                    if (at(pos) != '<') fail("expecting '<' after '!'", pos);
                }
                const uint32_t id = token(pos);
                last_start = r.size();
                n_prev = 1;
                r.push_back({t, id});
                pos = space(pos, nested);
            } else if (is_word(c)) {
                const size_t end = name_end(pos);
                const uint32_t id = symbol(src_.substr(pos, end - pos));
                pos = space(end, nested);
                last_start = r.size();
                n_prev = 1;
                r.push_back({GType::RuleRef, id});
            } else if (c == '(') {
                if (depth + 1 > lim_.max_nesting)
                    fail("groups nested too deeply (at most " + std::to_string(lim_.max_nesting) + ")", pos);
                const size_t open = pos;
                pos = space(pos + 1, true);
                const size_t n_before = g_.symbols.size();
                const uint32_t sub = generated(name);
                in_flight_ += r.size();  // this rule waits, unfinished, while the group is parsed
                pos = alternates(pos, name, sub, true, depth + 1);
                in_flight_ -= r.size();
                n_prev = std::max<uint64_t>(1, g_.symbols.size() - n_before);
                last_start = r.size();
                r.push_back({GType::RuleRef, sub});
                if (at(pos) != ')') fail("expecting ')' to close the group", open);
                pos = space(pos + 1, nested);
            } else if (c == '.') {
                last_start = r.size();
                n_prev = 1;
                r.push_back({GType::CharAny, 0});
                pos = space(pos + 1, nested);
            } else if (c == '*' || c == '+' || c == '?') {
                const size_t here = pos;
                pos = space(pos + 1, nested);
                if (c == '*') repeat(r, last_start, 0, 0, true, n_prev, name, here);
                else if (c == '+') repeat(r, last_start, 1, 0, true, n_prev, name, here);
                else repeat(r, last_start, 0, 1, false, n_prev, name, here);
            } else if (c == '{') {
                const size_t here = pos;
                pos = space(pos + 1, nested);
                const uint64_t lo = integer(pos);
                pos = space(pos, nested);
                uint64_t hi = lo;
                bool no_max = false;
                if (at(pos) == ',') {
                    pos = space(pos + 1, nested);
                    if (is_digit(at(pos))) {
                        hi = integer(pos);
                        pos = space(pos, nested);
                    } else {
                        no_max = true;
                    }
                }
                if (at(pos) != '}') fail("expecting '}'", pos);
                pos = space(pos + 1, nested);
                if (lo > lim_.max_repetition || (!no_max && hi > lim_.max_repetition))
                    fail("repetition count too large (at most " + std::to_string(lim_.max_repetition) + ")", here);
                if (!no_max && hi < lo) fail("repetition {m,n} with n < m", here);
                repeat(r, last_start, lo, hi, no_max, n_prev, name, here);
            } else {
                break;
            }
        }
        return pos;
    }

    void validate(const std::string& root) {
        for (const auto& [name, id] : g_.symbols)
            if (id >= g_.rules.size() || g_.rules[id].empty()) throw GrammarError("undefined rule '" + name + "'");
        auto it = g_.symbols.find(root);
        if (it == g_.symbols.end()) throw GrammarError("grammar does not define the rule '" + root + "'");
        g_.root = it->second;
        check_left_recursion();
    }

    // A rule that can reach itself without consuming input would loop forever.
    void check_left_recursion() {
        const size_t n = g_.rules.size();
        std::vector<char> may_be_empty(n, 0);
        // fixed point: a rule may be empty if an alternative is all rule refs that may be empty
        for (bool changed = true; changed;) {
            changed = false;
            for (size_t id = 0; id < n; ++id) {
                if (may_be_empty[id]) continue;
                bool alt_empty = true;
                for (const GElem& e : g_.rules[id]) {
                    if (e.type == GType::End || e.type == GType::Alt) {
                        if (alt_empty) {
                            may_be_empty[id] = 1;
                            changed = true;
                            break;
                        }
                        alt_empty = true;
                    } else if (e.type != GType::RuleRef || !may_be_empty[e.value]) {
                        alt_empty = false;
                    }
                }
            }
        }
        // edges: rule -> rules reachable at the start of an alternative (through empty prefixes)
        std::vector<std::vector<uint32_t>> first(n);
        for (size_t id = 0; id < n; ++id) {
            bool leading = true;
            for (const GElem& e : g_.rules[id]) {
                if (e.type == GType::End || e.type == GType::Alt) {
                    leading = true;
                } else if (e.type == GType::RuleRef) {
                    if (leading) first[id].push_back(e.value);
                    if (!may_be_empty[e.value]) leading = false;
                } else {
                    leading = false;
                }
            }
        }
        // iterative DFS for a cycle (no recursion: rule graphs may be deep)
        std::vector<uint8_t> state(n, 0);  // 0 new, 1 on the path, 2 done
        for (size_t s = 0; s < n; ++s) {
            if (state[s]) continue;
            std::vector<std::pair<uint32_t, size_t>> path{{(uint32_t)s, 0}};
            state[s] = 1;
            while (!path.empty()) {
                auto& [node, next] = path.back();
                if (next < first[node].size()) {
                    const uint32_t to = first[node][next++];
                    if (state[to] == 1) throw GrammarError("left recursion in rule '" + g_.name_of(to) + "'");
                    if (state[to] == 0) {
                        state[to] = 1;
                        path.push_back({to, 0});
                    }
                } else {
                    state[node] = 2;
                    path.pop_back();
                }
            }
        }
    }

    std::string_view src_;
    const std::function<int32_t(std::string_view)>& token_id_;
    GrammarLimits lim_;
    Grammar g_;
    std::vector<bool> defined_;
    size_t n_elements_ = 0;  // in finished rules
    size_t in_flight_ = 0;   // in the unfinished rules of enclosing groups
};

}  // namespace

static std::atomic<uint64_t> next_uid{1};

Grammar parse_grammar(std::string_view src, const std::string& root,
                      const std::function<int32_t(std::string_view)>& token_id, const GrammarLimits& limits) {
    Grammar g = Parser(src, token_id, limits).run(root);
    g.uid = next_uid.fetch_add(1);
    return g;
}

}  // namespace pyllama
