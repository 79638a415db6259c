// The table of architectures (models/architectures.h), read by the Python loader.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "bindings.h"
#include "../models/architectures.h"

using namespace pyllama;

void register_architectures(py::module_& m) {
    py::class_<ArchInfo>(m, "Architecture", "One row of the native table of architectures.")
        .def_property_readonly("name", [](const ArchInfo& a) { return std::string(a.name); },
                               "general.architecture")
        .def_property_readonly("family", [](const ArchInfo& a) { return std::string(family_name(a.family)); },
                               "llama | gemma3 | bert: how hyper-parameters are read")
        .def_readonly("decoder", &ArchInfo::decoder, "causal forward pass with a KV cache and logits (text generation)")
        .def_readonly("encoder", &ArchInfo::encoder, "non-causal forward pass to hidden states (embeddings)")
        .def_property_readonly("positions", [](const ArchInfo& a) { return std::string(positions_name(a.positions)); },
                               "rope | absolute | alibi: where a token's position enters the model")
        .def_readonly("rope_neox", &ArchInfo::rope_neox, "RoPE rotates pairs (i, i + n_rot/2)")
        .def_readonly("qk_norm", &ArchInfo::qk_norm, "needs attn_q_norm and attn_k_norm")
        .def_readonly("qkv_bias", &ArchInfo::qkv_bias, "needs attn_q/k/v biases")
        .def_readonly("post_norms", &ArchInfo::post_norms, "needs post_attention_norm and post_ffw_norm")
        .def_readonly("swa_period", &ArchInfo::swa_period,
                      "default sliding-window pattern: every swa_period-th layer is global; 0 = none")
        .def("__repr__", [](const ArchInfo& a) { return "<Architecture " + std::string(a.name) + ">"; });
    m.def("architectures", [] {
        py::list out;
        for (const ArchInfo& a : architectures()) out.append(py::cast(a, py::return_value_policy::reference));
        return out;
    }, "Every architecture pyllama knows, in table order.");
}
