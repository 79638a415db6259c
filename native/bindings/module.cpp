// pyllama._native: the compiled core. One register_* per exposed concept.
#include "bindings.h"

#ifndef PYLLAMA_VERSION
#error "PYLLAMA_VERSION is defined by CMakeLists.txt from pyllama/_version.py"
#endif

PYBIND11_MODULE(_native, m) {
    m.doc() = "pyllama native core: GGUF parsing, quantized kernels, transformer ops, tokenizer";
    m.attr("__version__") = PYLLAMA_VERSION;  // pyllama/_version.py's (tests/test_packaging.py)
    register_gguf(m);
    register_kernels(m);
    register_ops(m);
    register_tokenizer(m);
    register_kv_cache(m);
    register_architectures(m);
    register_model(m);
    register_lora(m);
    register_sampling(m);
    register_grammar(m);
    register_json(m);
}
