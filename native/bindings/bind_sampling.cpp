// The native sampler chain behind pyllama.sampling: SamplingConfig, SamplerChain,
// the token filters (the hook grammars use), and pre-sampling probabilities.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "../sampling/chain.h"

using namespace pyllama;

namespace {

const float* logits_of(const FloatArray& logits, int32_t n_vocab) {
    if (logits.ndim() != 1 || logits.shape(0) != n_vocab)
        throw py::value_error("logits must be a 1-D array of n_vocab floats");
    return logits.data();
}

py::tuple as_arrays(const std::vector<TokenData>& v) {
    py::array_t<int32_t> ids((py::ssize_t)v.size());
    py::array_t<float> probs((py::ssize_t)v.size());
    auto pi = ids.mutable_unchecked<1>();
    auto pp = probs.mutable_unchecked<1>();
    for (size_t i = 0; i < v.size(); ++i) {
        pi((py::ssize_t)i) = v[i].id;
        pp((py::ssize_t)i) = v[i].p;
    }
    return py::make_tuple(ids, probs);
}

}  // namespace

void register_sampling(py::module_& m) {
    py::enum_<SamplerKind>(m, "SamplerKind", "The configurable samplers of the chain")
        .value("penalties", SamplerKind::Penalties)
        .value("dry", SamplerKind::Dry)
        .value("top_n_sigma", SamplerKind::TopNSigma)
        .value("top_k", SamplerKind::TopK)
        .value("typ_p", SamplerKind::TypicalP)
        .value("top_p", SamplerKind::TopP)
        .value("min_p", SamplerKind::MinP)
        .value("xtc", SamplerKind::Xtc)
        .value("temperature", SamplerKind::Temperature)
        .value("adaptive_p", SamplerKind::AdaptiveP);

    py::class_<SamplingConfig>(m, "SamplingConfig", "Parameters of one sampler chain (llama-server's names)")
        .def(py::init<>())
        .def_readwrite("n_vocab", &SamplingConfig::n_vocab)
        .def_readwrite("seed", &SamplingConfig::seed)
        .def_readwrite("temperature", &SamplingConfig::temperature)
        .def_readwrite("dynatemp_range", &SamplingConfig::dynatemp_range)
        .def_readwrite("dynatemp_exponent", &SamplingConfig::dynatemp_exponent)
        .def_readwrite("top_k", &SamplingConfig::top_k)
        .def_readwrite("top_p", &SamplingConfig::top_p)
        .def_readwrite("min_p", &SamplingConfig::min_p)
        .def_readwrite("typical_p", &SamplingConfig::typical_p)
        .def_readwrite("top_n_sigma", &SamplingConfig::top_n_sigma)
        .def_readwrite("xtc_probability", &SamplingConfig::xtc_probability)
        .def_readwrite("xtc_threshold", &SamplingConfig::xtc_threshold)
        .def_readwrite("min_keep", &SamplingConfig::min_keep)
        .def_readwrite("repeat_last_n", &SamplingConfig::repeat_last_n)
        .def_readwrite("repeat_penalty", &SamplingConfig::repeat_penalty)
        .def_readwrite("frequency_penalty", &SamplingConfig::frequency_penalty)
        .def_readwrite("presence_penalty", &SamplingConfig::presence_penalty)
        .def_readwrite("dry_multiplier", &SamplingConfig::dry_multiplier)
        .def_readwrite("dry_base", &SamplingConfig::dry_base)
        .def_readwrite("dry_allowed_length", &SamplingConfig::dry_allowed_length)
        .def_readwrite("dry_penalty_last_n", &SamplingConfig::dry_penalty_last_n)
        .def_readwrite("mirostat", &SamplingConfig::mirostat)
        .def_readwrite("mirostat_tau", &SamplingConfig::mirostat_tau)
        .def_readwrite("mirostat_eta", &SamplingConfig::mirostat_eta)
        .def_readwrite("adaptive_target", &SamplingConfig::adaptive_target)
        .def_readwrite("adaptive_decay", &SamplingConfig::adaptive_decay)
        .def_readwrite("order", &SamplingConfig::order)
        .def_readwrite("logit_bias", &SamplingConfig::logit_bias)
        .def_property(
            "dry_breakers",
            [](const SamplingConfig& c) {
                std::vector<std::pair<int32_t, std::vector<int32_t>>> out(c.dry_breakers.begin(), c.dry_breakers.end());
                return out;
            },
            [](SamplingConfig& c, const std::vector<std::pair<int32_t, std::vector<int32_t>>>& v) {
                c.dry_breakers.clear();
                for (const auto& e : v) c.dry_breakers.emplace(e.first, e.second);
            },
            "(head token, tail tokens) pairs: a breaker is its head followed by its tail");

    py::class_<TokenFilter>(m, "TokenFilter", "A per-token constraint checked on the drawn token (grammars)");
    py::class_<MaskFilter, TokenFilter>(m, "MaskFilter", "A token filter from an allow mask of n_vocab booleans")
        .def(py::init([](const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& mask) {
                 if (mask.ndim() != 1) throw py::value_error("mask must be 1-D");
                 return new MaskFilter(std::vector<uint8_t>(mask.data(), mask.data() + mask.size()));
             }),
             py::arg("allowed"))
        .def("allows", &MaskFilter::allows, py::arg("token"));

    py::class_<SamplerChain>(m, "SamplerChain", "llama-server's sampler chain for one sequence")
        .def(py::init<const SamplingConfig&>(), py::arg("config"))
        .def(
            "sample",
            [](SamplerChain& self, const FloatArray& logits, const TokenFilter* filter) {
                const float* p = logits_of(logits, self.n_vocab());
                py::gil_scoped_release release;
                return self.sample(p, filter);
            },
            py::arg("logits"), py::arg("filter") = nullptr,
            "Draw the next token. A filter that refuses the drawn token makes the chain run again with the filter "
            "applied first.")
        .def("accept", &SamplerChain::accept, py::arg("token"))
        .def(
            "accept_many",
            [](SamplerChain& self, const std::vector<int32_t>& tokens) {
                for (int32_t t : tokens) self.accept(t);
            },
            py::arg("tokens"))
        .def("reset", &SamplerChain::reset)
        .def(
            "ranked", [](const SamplerChain& self) { return as_arrays(self.ranked()); },
            "(ids, probs) of the candidates left after the last draw, most probable first.")
        .def_property_readonly("seed", &SamplerChain::seed)
        .def_property_readonly("n_vocab", &SamplerChain::n_vocab)
        .def_property_readonly("names", [](const SamplerChain& self) {
            std::vector<std::string> out;
            for (const char* n : self.names()) out.emplace_back(n);
            return out;
        });

    m.def(
        "top_probabilities",
        [](const FloatArray& logits, size_t n, int32_t token) {
            if (logits.ndim() != 1) throw py::value_error("logits must be 1-D");
            float token_p = 0.0f;
            std::vector<TokenData> top;
            {
                py::gil_scoped_release release;
                top = top_probabilities(logits.data(), (int32_t)logits.shape(0), n, token, &token_p);
            }
            py::tuple arrays = as_arrays(top);
            // Typed elements, so the signature (and the stubs) say what they are.
            return py::make_tuple(arrays[0].cast<py::array_t<int32_t>>(), arrays[1].cast<py::array_t<float>>(),
                                  token_p);
        },
        py::arg("logits"), py::arg("n"), py::arg("token") = -1,
        "Softmax of raw logits: (ids, probs) of the n most probable, and the probability of token.");
}
