// GBNF grammars: parse_grammar, GrammarVocab, GrammarMatcher and the sampler-chain
// filter built on it.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "../grammar/grammar.h"
#include "../grammar/matcher.h"

using namespace pyllama;

void register_grammar(py::module_& m) {
    // A bad grammar is the client's error: the native class derives from the library's
    // InvalidRequest (itself a ValueError), so the server maps it like every other.
    py::object invalid_request = py::module_::import("pyllama.errors").attr("InvalidRequest");
    auto& grammar_error = py::register_exception<GrammarError>(m, "GrammarError", invalid_request);
    // Registered after its base, so pybind11 tries it first.
    py::register_exception<GrammarTooComplex>(m, "GrammarTooComplexError", grammar_error.ptr());

    py::class_<Grammar, std::shared_ptr<Grammar>>(m, "Grammar", "A parsed GBNF grammar")
        .def_property_readonly("n_rules", [](const Grammar& g) { return g.rules.size(); })
        .def_property_readonly("rule_names", [](const Grammar& g) {
            std::vector<std::string> out;
            for (const auto& kv : g.symbols) out.push_back(kv.first);
            return out;
        });

    m.def(
        "parse_grammar",
        [](const std::string& text, const std::string& root, const py::object& token_id, uint64_t max_steps) {
            std::function<int32_t(std::string_view)> lookup;
            if (!token_id.is_none())
                lookup = [&token_id](std::string_view s) {
                    py::gil_scoped_acquire gil;  // the only Python inside the parse
                    return token_id(py::str(std::string(s))).cast<int32_t>();
                };
            auto g = std::make_shared<Grammar>(parse_grammar(text, root, lookup));
            WorkBudget work(max_steps);
            initial_stacks(*g, work);  // too ambiguous to even start: refused now, not on the engine
            return g;
        },
        py::arg("text"), py::arg("root") = "root", py::arg("token_id") = py::none(), py::kw_only(),
        py::arg("max_steps") = GrammarMatcher::kDefaultMaxSteps, py::call_guard<py::gil_scoped_release>(),
        "Parse GBNF text; token_id(text) -> id resolves <token> references. Also computes the stacks the grammar "
        "starts with, so a grammar too ambiguous to follow fails here. Raises GrammarError (GrammarTooComplexError "
        "for the ambiguity). Runs without the GIL except inside token_id.");

    py::class_<GrammarVocab, std::shared_ptr<GrammarVocab>>(m, "GrammarVocab",
                                                            "Token texts (bytes) and end-of-generation ids")
        .def(py::init([](const std::vector<py::bytes>& pieces, const std::vector<int32_t>& eog) {
                 std::vector<std::string> ps;
                 ps.reserve(pieces.size());
                 for (const auto& p : pieces) ps.emplace_back(p);
                 return std::make_shared<GrammarVocab>(std::move(ps), eog);
             }),
             py::arg("pieces"), py::arg("eog"))
        .def("__len__", &GrammarVocab::size)
        .def(
            "piece",
            [](const GrammarVocab& v, int32_t id) {
                if (id < 0 || (size_t)id >= v.size()) throw py::index_error("token id out of range");
                return py::bytes(v.piece(id));
            },
            py::arg("token"), "The token's text as the grammar sees it")
        .def(
            "is_eog",
            [](const GrammarVocab& v, int32_t id) {
                if (id < 0 || (size_t)id >= v.size()) throw py::index_error("token id out of range");
                return v.is_eog(id);
            },
            py::arg("token"));

    // Registered before GrammarMatcher.filter, whose signature names it.
    py::class_<GrammarFilter, TokenFilter>(m, "GrammarFilter", "A grammar as the sampler chain's token filter");

    py::class_<GrammarMatcher, std::shared_ptr<GrammarMatcher>>(m, "GrammarMatcher",
                                                                "A grammar's state over generated tokens")
        .def(py::init([](std::shared_ptr<Grammar> g, std::shared_ptr<GrammarVocab> v, uint64_t max_steps) {
                 return std::make_shared<GrammarMatcher>(std::move(g), std::move(v), max_steps);
             }),
             py::arg("grammar"), py::arg("vocab"), py::kw_only(),
             py::arg("max_steps") = GrammarMatcher::kDefaultMaxSteps, py::call_guard<py::gil_scoped_release>(),
             "Every call below may raise GrammarTooComplexError: more than max_steps of work for one token, or "
             "too many stacks at once. The matcher's state is then unspecified: end the generation.")
        .def("allows", py::overload_cast<int32_t>(&GrammarMatcher::allows, py::const_), py::arg("token"),
             py::call_guard<py::gil_scoped_release>())
        .def("accept", &GrammarMatcher::accept, py::arg("token"), py::call_guard<py::gil_scoped_release>(),
             "Advance over the token; False (state unchanged) when the grammar refuses it.")
        .def("accept_text", &GrammarMatcher::accept_text, py::arg("text"), py::call_guard<py::gil_scoped_release>())
        .def_property_readonly("last_steps", &GrammarMatcher::last_steps, "Work steps the last call took")
        .def_property_readonly("total_steps", &GrammarMatcher::total_steps, "Work steps of every call so far")
        .def_property_readonly("max_steps", &GrammarMatcher::max_steps)
        .def("complete", &GrammarMatcher::complete)
        .def("finished", &GrammarMatcher::finished)
        .def(
            "allowed_mask",
            [](const GrammarMatcher& self, int32_t n_vocab) {
                std::shared_ptr<const std::vector<uint64_t>> bits;
                {
                    py::gil_scoped_release release;
                    bits = self.full_mask();
                }
                const int32_t n_bits = (int32_t)bits->size() * 64;
                py::array_t<bool> out(n_vocab);
                auto o = out.mutable_unchecked<1>();
                for (int32_t i = 0; i < n_vocab; ++i) o(i) = i < n_bits && (((*bits)[(size_t)i >> 6] >> (i & 63)) & 1);
                return out;
            },
            py::arg("n_vocab"), "Which tokens the grammar allows now.")
        .def("filter", [](std::shared_ptr<GrammarMatcher> self) { return GrammarFilter(self); },
             "A TokenFilter for SamplerChain.sample");
}
