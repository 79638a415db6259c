// GBNF grammars as llama.cpp defines them, parsed into flat rules of elements
// (the representation llama.cpp's matcher walks): a rule is its alternatives,
// each a sequence of elements, separated by Alt and closed by End.
//
// Syntax: `name ::= alternatives` per rule; "literals" with \n \t \r \\ \" \[ \] \-
// \xHH \uHHHH \UHHHHHHHH escapes; [a-z] classes and [^...] negated ones; . any
// character; ( groups ); * + ? {m} {m,} {m,n} repetition; rule references;
// <[id]> and <token> token references, !<...> for "any other token"; # comments.
//
// Unlike llama.cpp, nothing a client sends can exhaust the stack or memory:
// group nesting, repetition counts, rule and element counts are bounded, and
// every problem is a GrammarError that says what and where.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pyllama {

enum class GType : uint8_t {
    End,           // end of a rule
    Alt,           // start of another alternative
    RuleRef,       // value: rule id
    Char,          // value: code point; starts a character set
    CharNot,       // value: code point; starts a negated character set
    CharRngUpper,  // value: upper bound of the range started by the element before
    CharAlt,       // value: another code point of the set
    CharAny,       // any code point (.)
    Token,         // value: token id
    TokenNot,      // value: token id that must not come
};

struct GElem {
    GType type;
    uint32_t value;
};

using GRule = std::vector<GElem>;

class GrammarError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A valid grammar that costs too much to follow: too many stacks at once, or more
// work than the budget for one token. Thrown by the matcher; the task fails alone.
class GrammarTooComplex : public GrammarError {
public:
    using GrammarError::GrammarError;
};

// Immutable once parsed: a request thread parses it, the engine's matchers read it
// (server code shares one Grammar between tasks through a cache).
struct Grammar {
    std::vector<GRule> rules;
    std::map<std::string, uint32_t> symbols;  // rule name -> id (generated ones included)
    uint32_t root = 0;
    uint64_t uid = 0;  // unique per parse: token masks are cached under it
    std::string name_of(uint32_t id) const;
};

struct GrammarLimits {
    size_t max_source_bytes = 4u << 20;
    int max_nesting = 256;              // ( groups ) inside each other
    uint64_t max_repetition = 2000;     // {m,n} and the rules they expand to (llama.cpp's threshold)
    size_t max_rules = 100000;
    size_t max_elements = 4u << 20;
};

// `token_id` resolves <token> text to a vocabulary id (-1: not exactly one token).
Grammar parse_grammar(std::string_view src, const std::string& root = "root",
                      const std::function<int32_t(std::string_view)>& token_id = nullptr,
                      const GrammarLimits& limits = GrammarLimits());

}  // namespace pyllama
