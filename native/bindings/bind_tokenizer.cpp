// The native tokenizer parts behind pyllama.tokenizer: BpeTokenizer (byte-level
// BPE: pre-tokenizers + merges), SpmTokenizer (SentencePiece score merges) and
// SpecialSplitter (the special-token partition).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "../tokenizer/bpe.h"
#include "../tokenizer/special.h"
#include "../tokenizer/spm.h"

using namespace pyllama;

namespace {

// str -> UTF-8 bytes; lone surrogates (escaped invalid bytes) map back to their bytes.
std::string utf8_of(const py::handle& h) {
    Py_ssize_t n = 0;
    const char* p = PyUnicode_AsUTF8AndSize(h.ptr(), &n);
    if (p) return std::string(p, (size_t)n);
    PyErr_Clear();
    py::object b = py::reinterpret_steal<py::object>(PyUnicode_AsEncodedString(h.ptr(), "utf-8", "surrogateescape"));
    if (!b) throw py::error_already_set();
    return std::string(PyBytes_AS_STRING(b.ptr()), (size_t)PyBytes_GET_SIZE(b.ptr()));
}

std::vector<std::string> utf8_list(const py::list& items) {
    std::vector<std::string> out;
    out.reserve(items.size());
    for (const py::handle& h : items) out.push_back(utf8_of(h));
    return out;
}

VocabIndex vocab_index(const py::list& tokens) {
    VocabIndex index;
    index.reserve(tokens.size(), tokens.size() * 8);
    for (const py::handle& h : tokens) {
        Py_ssize_t n = 0;
        const char* p = PyUnicode_AsUTF8AndSize(h.ptr(), &n);
        if (p) {
            index.add(std::string_view(p, (size_t)n));
        } else {
            PyErr_Clear();
            index.add(utf8_of(h));
        }
    }
    index.build();
    return index;
}

py::str str_of(std::string_view s) {
    PyObject* o = PyUnicode_DecodeUTF8(s.data(), (Py_ssize_t)s.size(), "surrogateescape");
    if (!o) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(o);
}

}  // namespace

void register_tokenizer(py::module_& m) {
    py::enum_<PreKind>(m, "PreKind", "Pre-tokenizers with a native implementation")
        .value("gpt2", PreKind::Gpt2)
        .value("starcoder", PreKind::Starcoder)
        .value("llama3", PreKind::Llama3)
        .value("qwen2", PreKind::Qwen2);
    py::class_<BpeTokenizer>(m, "BpeTokenizer", "Byte-level BPE over a GGUF vocabulary and its merges")
        .def(py::init([](const py::list& tokens, const py::list& merges, bool ignore_merges) {
                 return new BpeTokenizer(utf8_list(tokens), utf8_list(merges), ignore_merges);
             }),
             py::arg("tokens"), py::arg("merges"), py::kw_only(), py::arg("ignore_merges") = false)
        .def(
            "encode",
            [](BpeTokenizer& self, const py::str& text, PreKind kind) {
                const std::string s = utf8_of(text);
                std::vector<int32_t> out;
                {
                    py::gil_scoped_release release;
                    self.encode(s, kind, out);
                }
                return out;
            },
            py::arg("text"), py::arg("kind"), "Token ids of one raw fragment, pre-tokenized natively.")
        .def(
            "encode_words",
            [](BpeTokenizer& self, const py::list& words) {
                std::vector<std::string> ws = utf8_list(words);
                std::vector<int32_t> out;
                {
                    py::gil_scoped_release release;
                    self.encode_words(std::vector<std::string_view>(ws.begin(), ws.end()), out);
                }
                return out;
            },
            py::arg("words"), "Token ids of words already split by a pre-tokenizer.")
        .def("cache_size", &BpeTokenizer::cache_size);

    py::class_<SpmTokenizer>(m, "SpmTokenizer", "SentencePiece-style score merges with <0xXX> byte fallback")
        .def(py::init([](const py::list& tokens, const py::array_t<float, py::array::c_style | py::array::forcecast>& scores,
                         int32_t unk) {
                 if ((size_t)scores.size() != tokens.size())
                     throw py::value_error("scores and tokens differ in length");
                 const float* sp = scores.data();
                 return new SpmTokenizer(vocab_index(tokens), std::vector<float>(sp, sp + scores.size()), unk);
             }),
             py::arg("tokens"), py::arg("scores"), py::arg("unk"))
        .def(
            "encode",
            [](const SpmTokenizer& self, const py::str& text) {
                const std::string s = utf8_of(text);
                std::vector<int32_t> out;
                {
                    py::gil_scoped_release release;
                    self.encode(s, out);
                }
                return out;
            },
            py::arg("text"), "Token ids of one raw fragment whose spaces are already U+2581.")
        .def(
            "find", [](const SpmTokenizer& self, const py::str& text) { return self.index().find(utf8_of(text)); },
            py::arg("text"), "The id of the token with this text, or -1.");
    py::class_<SpecialSplitter>(m, "SpecialSplitter", "Splits a text on special tokens, in llama.cpp's order")
        .def(py::init([](const py::list& entries) {
                 std::vector<SpecialSplitter::Entry> es;
                 es.reserve(entries.size());
                 for (const py::handle& h : entries) {
                     auto t = h.cast<py::tuple>();
                     if (t.size() != 5) throw py::value_error("entry must be (text, id, lstrip, rstrip, needs_parse)");
                     es.push_back({utf8_of(t[0]), t[1].cast<int32_t>(), t[2].cast<bool>(), t[3].cast<bool>(),
                                   t[4].cast<bool>()});
                 }
                 return new SpecialSplitter(std::move(es));
             }),
             py::arg("entries"), "entries: (text, id, lstrip, rstrip, needs_parse) tuples, highest priority first.")
        .def(
            "split",
            [](const SpecialSplitter& self, const py::str& text, bool parse_special) {
                const std::string s = utf8_of(text);
                std::vector<SpecialSplitter::Frag> frags;
                {
                    py::gil_scoped_release release;
                    frags = self.split(s, parse_special);
                }
                py::list out(frags.size());
                for (size_t i = 0; i < frags.size(); ++i) {
                    const auto& f = frags[i];
                    if (f.id >= 0)
                        out[i] = py::int_(f.id);
                    else
                        out[i] = str_of(std::string_view(s).substr(f.start, f.len));
                }
                return out;
            },
            py::arg("text"), py::arg("parse_special"),
            "Raw fragments (str) and special token ids (int), in text order.");
}
