// pyllama._native: the compiled core. One register_* per exposed concept.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_gguf(py::module_& m);
void register_kernels(py::module_& m);
void register_ops(py::module_& m);
void register_tokenizer(py::module_& m);
void register_kv_cache(py::module_& m);
void register_model(py::module_& m);
void register_sampling(py::module_& m);
void register_grammar(py::module_& m);

PYBIND11_MODULE(_native, m) {
    m.doc() = "pyllama native core: GGUF parsing, quantized kernels, transformer ops, tokenizer";
    register_gguf(m);
    register_kernels(m);
    register_ops(m);
    register_tokenizer(m);
    register_kv_cache(m);
    register_model(m);
    register_sampling(m);
    register_grammar(m);
}
