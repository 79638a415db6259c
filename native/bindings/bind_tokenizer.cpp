// BpeTokenizer: the native byte-level BPE (pre-tokenizers + merges) behind
// pyllama.tokenizer's BpeEncoder.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "../tokenizer/bpe.h"

namespace py = pybind11;
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
                    for (const std::string& w : ws) self.encode_word(w, out);
                }
                return out;
            },
            py::arg("words"), "Token ids of words already split by a pre-tokenizer.")
        .def("cache_size", &BpeTokenizer::cache_size);
}
